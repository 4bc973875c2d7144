# The two set-up commands of the README: `make demo` and `make test`. Both create .venv first.
UV := python3 -m uv

.venv/.synced: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen
	@touch $@

.PHONY: setup demo test lint bench
setup: .venv/.synced

demo: .venv/.synced
	.venv/bin/audiencesync demo

lint: .venv/.synced
	.venv/bin/ruff check src tests bench

test: .venv/.synced lint
	.venv/bin/pytest -q

bench: .venv/.synced
	for b in bench/*.py; do .venv/bin/python $$b || exit 1; done
