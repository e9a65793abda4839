"""TODO stub."""
import argparse
def add_arguments(p: argparse.ArgumentParser) -> None:
    pass
async def run(target, args):
    return {}
