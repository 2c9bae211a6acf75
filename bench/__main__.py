"""Run every benchmark: ``python -m bench`` (or ``./dev bench``)."""

from bench import batch_bench, convert_bench, fix_srt_bench, whisper_bench

if __name__ == "__main__":
    convert_bench.main([])
    whisper_bench.main([])
    fix_srt_bench.main(["--latency", "2", "--repeat", "1"])
    fix_srt_bench.main(["--latency", "2", "--repeat", "1", "--serial"])
    batch_bench.main([])
