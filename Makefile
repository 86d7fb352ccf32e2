# The two commands of the README. Both set up .venv first (idempotent).
SHELL := /bin/bash
export CAPCSE_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export HF_HUB_OFFLINE ?= $(if $(wildcard ../shared/data),1,)
VENV ?= .venv

.PHONY: setup main test
setup:
	bash scripts/setup.sh

main: setup
	bash scripts/main.sh

test: setup
	$(VENV)/bin/python -m pytest -q
