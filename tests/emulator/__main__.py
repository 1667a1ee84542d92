"""`python -m tests.emulator --port 9100 [--record] [--script JSON]`: serve until killed."""

from tests.emulator.server import main

main()
