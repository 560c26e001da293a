"""A progress bar for cells that take more than a few seconds: `for x in progress(items, "measuring")`.

In a notebook it shows an ipywidgets bar that fills as the loop advances; without a front end
(nbclient, nbgrader) the same widget is only recorded in the outputs, so it is harmless there.
"""

from __future__ import annotations


def progress(items, label: str = ""):
    """Yield the items of `items` while a bar under the cell shows how many are done."""
    import ipywidgets as W
    from IPython.display import display

    items = list(items)
    bar = W.IntProgress(value=0, min=0, max=max(len(items), 1), description=label,
                        style={"description_width": "initial"})
    count = W.Label(f"0 / {len(items)}")
    display(W.HBox([bar, count]))
    for k, item in enumerate(items):
        yield item
        bar.value, count.value = k + 1, f"{k + 1} / {len(items)}"
    bar.bar_style = "success"
