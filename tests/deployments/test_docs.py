from pathlib import Path

from deployments.docs import BEGIN, END, settings_table


def test_readme_settings_table_is_current() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    current = readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)].strip()
    assert current == settings_table(), "run: python -m deployments.docs and paste into README"
