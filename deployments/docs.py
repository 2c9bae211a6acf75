"""Generated documentation: ``python -m deployments.docs`` prints the README's settings table."""

from __future__ import annotations

from pydantic import BaseModel

from mediaflows.settings import Settings

BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _rows(annotation, f"{prefix}{name.upper()}__")
            continue
        default = field.get_default(call_default_factory=False)
        if field.default_factory is not None:
            default = "`~/.mediaflows`" if name == "home" else "(computed)"
        elif default in (None, ""):
            default = "(derived)" if name in ("store_url", "work_dir") else "—"
        else:
            default = f"`{default}`"
        rows.append(f"| `{prefix}{name.upper()}` | {default} | {field.description or ''} |")
    return rows


def settings_table() -> str:
    """A Markdown table of every setting: environment variable, default, description."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    return "\n".join(rows + _rows(Settings, "MEDIAFLOWS_"))


if __name__ == "__main__":
    print(BEGIN)
    print(settings_table())
    print(END)
