#!/bin/bash
# How fast the processor drains a NATS backlog, and its peak memory: the
# nats-drain row of scripts/bench.sh (BENCH_BACKLOG messages, 100000),
# kept under this name for the commands of older figures.
exec bash "$(dirname "$0")/bench.sh" --rows nats-drain "$@"
