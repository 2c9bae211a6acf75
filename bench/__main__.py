"""Run every benchmark: ``python -m bench`` (or ``./dev bench``)."""

from bench import (
    asr_bench,
    batch_bench,
    batched_bench,
    convert_bench,
    formats_bench,
    llm_bench,
    long_bench,
    package_bench,
    whisper_bench,
    worker_bench,
)

if __name__ == "__main__":
    formats_bench.main([])
    convert_bench.main([])
    package_bench.main([])
    whisper_bench.main([])
    batched_bench.main([])
    llm_bench.main(["--latency", "2", "--repeat", "1"])
    llm_bench.main(["--latency", "2", "--repeat", "1", "--serial"])
    llm_bench.main(["--latency", "2", "--repeat", "1", "--to", "de,fr"])
    llm_bench.main(["--latency", "2", "--repeat", "1", "--to", "de,fr", "--verbose"])
    asr_bench.main(["--repeat", "1"])
    batch_bench.main([])
    worker_bench.main([])
    long_bench.main([])
