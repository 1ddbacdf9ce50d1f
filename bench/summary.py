"""What every benchmark prints at its end: whether the build is one whose
figures are worth comparing, then one line per target met or missed."""


def sanitized(pid):
    """True when the process runs with AddressSanitizer or UBSan loaded."""
    with open(f"/proc/{pid}/maps") as f:
        return any("libasan" in line or "libubsan" in line for line in f)


def print_checks(title, checks, sanitized_build):
    """`checks`: (name, met, what was measured) triples."""
    print(f"\n==== {title} benchmark summary ====")
    if sanitized_build:
        print("WARNING: this todod was built with sanitizers; build without "
              "--enable-sanitizers for figures worth comparing")
    width = max(len(name) for name, _, _ in checks)
    for name, good, got in checks:
        print(f"{'ok  ' if good else 'MISS'} {name:{width}} {got}")
