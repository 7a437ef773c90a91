"""${NAME} templates: nginx/nginx.conf.template and mysql/conf/instance.cnf.template (which the
MariaDB image's entrypoint fills the same way in bash)."""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def render_template(text: str, values: dict[str, str]) -> str:
    """Fill ${NAME} placeholders; an unknown name is an error, never a silent blank."""
    missing = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise KeyError(f"template placeholders without a value: {missing}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
