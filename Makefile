# The two commands of the README. Both set up .venv first (idempotent).
SHELL := /bin/bash
export CAPCSE_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export HF_HUB_OFFLINE ?= $(if $(wildcard ../shared/data),1,)
VENV ?= $(or $(CAPCSE_VENV),.venv)

.PHONY: setup main test lock
setup:
	bash scripts/setup.sh

main: setup
	bash scripts/main.sh

test: setup
	$(VENV)/bin/python -m pytest -q

# Refresh requirements/lock.txt (newest versions inside pyproject.toml's ranges, in .venv-lock); then run
# CAPCSE_VENV=.venv-lock make test before committing it.
lock:
	bash scripts/lock.sh
