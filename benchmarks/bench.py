"""`denser bench` without the CLI entry: python benchmarks/bench.py [--lengths ...] (same arguments)."""
import argparse
import sys

from denser import bench

parser = argparse.ArgumentParser(prog="denser bench", description="token_weights vs the dense formulation")
bench.add_arguments(parser)
sys.exit(bench.run(parser.parse_args()))
