"""Generated documentation: ``python -m deployments.docs`` prints the README's settings table."""

from __future__ import annotations

from mediaflows.settings import Settings

BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"


def settings_table() -> str:
    """A Markdown table of every setting: environment variable, default, description."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=False)
        if field.default_factory is not None:
            default = "`~/.mediaflows`" if name == "home" else "(computed)"
        elif default in (None, ""):
            default = "(derived)" if name in ("store_url", "work_dir") else "—"
        else:
            default = f"`{default}`"
        var = f"`MEDIAFLOWS_{name.upper()}`"
        rows.append(f"| {var} | {default} | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(BEGIN)
    print(settings_table())
    print(END)
