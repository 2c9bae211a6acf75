"""The format table vs pysubs2 alone: read and write 10,000 cues in each format, in one run.

Prints per format: mediaflows (``read_subtitles`` of the file's bytes, then ``write_subtitles``)
÷ pysubs2 (decode, ``SSAFile.from_string``, ``to_string``; for SRT and WebVTT with the options
mediaflows uses: tags kept) on the same file (goal ≤ 1.2 where pysubs2 reads and writes the
format). SBV is not in pysubs2; its JSON is pysubs2's own schema,
shown for scale only. Best of ``--repeat`` runs (the machine's other load only slows a run down).
Plain Python, no server.
"""

from __future__ import annotations

import argparse

import pysubs2

from bench.common import timed
from mediaflows.subtitles.formats import FORMATS, read_subtitles, write_subtitles
from mediaflows.subtitles.records import TimedCue

LINES = (
    "Das ist der Satz Nummer {n}, und er ist\nlang genug für zwei Zeilen.",
    "<i>A voice off screen, cue {n},</i>\n<i>in italics.</i>",
    "{{\\an8}}A sign at the top, number {n}",
    "这是第{n}句话，\n长度足够两行。",
)


def make_cues(count: int) -> list[TimedCue]:
    """A cue every 3 s, 2.5 s long, times to the millisecond; text of four kinds in turn."""
    return [
        TimedCue(
            id=n,
            start_ms=n * 3000 + n % 1000,
            end_ms=n * 3000 + 2500 + n % 1000,
            text=LINES[n % 4].format(n=n),
            position=8 if n % 4 == 2 else None,
        )
        for n in range(1, count + 1)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cues", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    cues = make_cues(args.cues)
    print(f"formats: read + write {args.cues} cues, best of {args.repeat}")
    print(f"{'format':<7} {'mediaflows':>11} {'pysubs2':>9} {'ratio':>6}  goal ≤ 1.2")
    for name, fmt in FORMATS.items():
        data = write_subtitles(cues, name, "de").encode()
        file_name = "bench" + fmt.extensions[0]

        def ours(data: bytes = data, name: str = name, file_name: str = file_name) -> None:
            write_subtitles(read_subtitles(data, file_name).cues, name, "de")

        mine = min(timed(ours, args.repeat))
        theirs = fmt.pysubs2 or ("json" if name == "json" else None)
        if theirs is None:
            print(f"{name:<7} {mine * 1000:>9.0f}ms {'—':>9} {'—':>6}  (pysubs2 has no {name})")
            continue
        their_text = data.decode()
        if name == "json":  # pysubs2's JSON has a schema of its own: its file of the same cues
            srt = write_subtitles(cues, "srt")
            their_text = pysubs2.SSAFile.from_string(srt, format_="srt").to_string("json")

        # SRT and WebVTT as mediaflows asks pysubs2 for them: tags kept, not converted.
        kept = theirs in ("srt", "vtt")

        def pysubs2_alone(text: str = their_text, theirs: str = theirs, kept: bool = kept) -> None:
            subs = pysubs2.SSAFile.from_string(
                text.encode().decode(), format_=theirs, keep_html_tags=kept
            )
            subs.to_string(theirs, keep_ssa_tags=kept)

        base = min(timed(pysubs2_alone, args.repeat))
        note = "  (pysubs2's own JSON schema: scale only)" if name == "json" else ""
        print(f"{name:<7} {mine * 1000:>9.0f}ms {base * 1000:>7.0f}ms {mine / base:>6.2f}{note}")


if __name__ == "__main__":
    main()
