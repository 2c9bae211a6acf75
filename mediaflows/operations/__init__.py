"""The operations mediaflows runs, each declared once as an :class:`OperationSpec` in its own
module, with its procedure: the steps its flow calls in order, each a plain function returning a
typed record (the table of formats in *pysubs2*'s ``formats/__init__.py`` is the model).

Everything that lists or dispatches operations reads :data:`OPERATIONS`: the CLI (its ``run``
and ``batch`` commands and their options), the Python API (``submit``/``wait``), the batch
flows, the sweep, ``mediaflows setup`` (which flows the crash automation watches) and the
generated ``prefect.yaml`` and docs.

* :mod:`.spec`: :class:`OperationSpec` and the records a procedure hands its flow.
* :mod:`.inputs`: what the subtitle operations read: a subtitle file, or a video's track.
* :mod:`.convert`, :mod:`.transcribe`, :mod:`.generate_srt`, :mod:`.fix_srt`,
  :mod:`.translate_srt`, :mod:`.package`: one module per operation.

Adding an operation is one module here (its spec and procedure), one line in the table below,
one flow module ``flows/<name>.py`` whose flow is named ``<name>``, and one line in
``flows/batch.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from mediaflows.errors import InputError
from mediaflows.operations.convert import CONVERT
from mediaflows.operations.fix_srt import FIX_SRT
from mediaflows.operations.generate_srt import GENERATE_SRT
from mediaflows.operations.package import PACKAGE
from mediaflows.operations.spec import OperationSpec, OutputIds, TextOutput
from mediaflows.operations.transcribe import TRANSCRIBE
from mediaflows.operations.translate_srt import TRANSLATE_SRT

#: Every operation, by name, in the order the CLI and the docs list them.
OPERATIONS: dict[str, OperationSpec[Any, Any, Any, Any]] = {
    spec.name: spec for spec in (CONVERT, TRANSCRIBE, GENERATE_SRT, FIX_SRT, TRANSLATE_SRT, PACKAGE)
}

if TYPE_CHECKING:
    OperationName = str
else:
    #: An operation's name as a parameter type: the UI's run forms offer the choices.
    OperationName = Literal[tuple(OPERATIONS)]


def get_operation(name: str) -> OperationSpec[Any, Any, Any, Any]:
    """The operation called ``name`` (``generate_srt``, or the CLI's ``generate-srt``);
    :class:`InputError` naming the choices for any other name."""
    spec = OPERATIONS.get(name.replace("-", "_"))
    if spec is None:
        raise InputError(f"unknown operation {name!r}; one of: {', '.join(OPERATIONS)}")
    return spec


__all__ = [
    "CONVERT",
    "FIX_SRT",
    "GENERATE_SRT",
    "OPERATIONS",
    "PACKAGE",
    "TRANSCRIBE",
    "TRANSLATE_SRT",
    "OperationName",
    "OperationSpec",
    "OutputIds",
    "TextOutput",
    "get_operation",
]
