"""Run every benchmark: ``python -m bench`` (or ``./dev bench``)."""

from bench import batch_bench, convert_bench, llm_bench, whisper_bench

if __name__ == "__main__":
    convert_bench.main([])
    whisper_bench.main([])
    llm_bench.main(["--latency", "2", "--repeat", "1"])
    llm_bench.main(["--latency", "2", "--repeat", "1", "--serial"])
    llm_bench.main(["--latency", "2", "--repeat", "1", "--to", "de,fr"])
    batch_bench.main([])
