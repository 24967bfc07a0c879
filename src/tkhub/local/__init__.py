"""Local mode: one machine, processes as servers, system accounts, the GPU ledger."""
