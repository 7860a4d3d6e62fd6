# Common commands. The two that matter are ./run.sh (start the app) and ./test.sh (all tests).
.PHONY: run test fast lint bench demo
run:
	./run.sh
test:
	./test.sh
fast:            ## unit tests only: no real weights, no browser
	./test.sh -m "not slow and not browser"
lint:
	.venv/bin/python -m pip install --quiet ruff && .venv/bin/ruff check tlcore tests ui pages app.py
	.venv/bin/lint-imports
bench:
	.venv/bin/python benchmarks/bench_training.py
demo:            ## the CLI on the text demo, linear probe
	.venv/bin/python -m tlcore demo make sentiment --out demo_data/sentiment
	.venv/bin/python -m tlcore finetune --modality text --source demo_data/sentiment/source --target demo_data/sentiment/target \
	  --eval demo_data/sentiment/eval --strategy linear_probe --out runs/sentiment-lp --json runs/sentiment-lp.json
