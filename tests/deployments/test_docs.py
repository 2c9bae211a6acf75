"""The generated files (docs/configuration.md, docs/operations.md, the deployments of
prefect.yaml and prefect-docker.yaml) match the code they are generated from."""

from deployments import generate
from mediaflows.operations import OPERATIONS


def test_generated_files_are_current() -> None:
    stale = [
        str(path.relative_to(generate.ROOT))
        for path, text in generate.outputs().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"stale: {stale}; run: python -m deployments.generate"


def test_every_operation_has_its_deployments_and_docs() -> None:
    files = generate.outputs()
    process = files[generate.ROOT / "prefect.yaml"]
    operations = files[generate.ROOT / "docs" / "operations.md"]
    for spec in OPERATIONS.values():
        assert f"entrypoint: {spec.entrypoint}" in process
        assert f"entrypoint: flows/batch.py:{spec.batch_name}" in process
        assert f"## `{spec.name}`" in operations
        assert f"mediaflows run {spec.cli_name}" in operations
