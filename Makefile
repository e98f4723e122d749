# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/accesstrail demo

# Style and static checks first: they take seconds and fail before the slower suite starts.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: system-deps lint
	$(BIN)/python -m pytest

# Debian packages the tests use: systemd-analyze/systemd-sysusers check the units, strace checks
# their seccomp filter against the real product, chromium is the headless browser the web UI tests
# drive (through Playwright's Python package, which never downloads a browser of its own).
# Installed only when missing and we are root with apt-get; otherwise one note, and those tests
# skip. `make demo` never needs them. Each entry is command:package.
SYSTEM_TOOLS := systemd-analyze:systemd systemd-sysusers:systemd strace:strace chromium:chromium
system-deps:
	@missing=; for pair in $(SYSTEM_TOOLS); do \
		command -v $${pair%%:*} >/dev/null || case " $$missing " in \
			*" $${pair#*:} "*) ;; *) missing="$$missing $${pair#*:}" ;; esac; \
	done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing the Debian packages$$missing for the unit and browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	else \
		echo "note:$$missing missing and cannot be installed here (not root with apt-get); the tests that need them will skip"; \
	fi

# Sync speed and memory against the floor the network allows (not part of `make test`);
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--limit off --big-users 0".
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
