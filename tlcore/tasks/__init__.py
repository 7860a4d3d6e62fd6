"""Transfer tasks beyond classification: ``ner`` (token classification) and ``asr`` (speech recognition).

Each module exposes ``run(cfg, *, progress, should_cancel, resume) -> report`` with the same run-folder
contract as classification (model/, report.json, README.md) and ``predict(run_dir, inputs) -> list[dict]``.
"""
