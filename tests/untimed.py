"""What two runs of the same trials repeat exactly: their results without the timings."""


def untimed(curve):
    """A learning curve without each epoch's seconds."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in curve]


def measured(metrics):
    """The metrics but the latency, a timing that differs between two runs of the same trial."""
    return {k: v for k, v in metrics.items() if k != "latency"}
