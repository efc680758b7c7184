"""Restreaming: ingest, the program, destinations and the processes behind them."""
