"""The one way widgets are built here: controls → a pure figure function → a FigureWidget.

The figure function is the part tests call; this binder only wires controls to it, and shows
a message instead of raising if the function fails for some combination of values.
"""

from __future__ import annotations


def interactive_figure(figure_fn, controls: dict, **fixed):
    """A VBox of `controls` above a plotly FigureWidget drawn by `figure_fn(**values, **fixed)`.

    `controls` maps figure_fn's keyword names to ipywidgets controls; every change redraws.
    """
    import ipywidgets as W
    import plotly.graph_objects as go

    message = W.HTML()
    figure = go.FigureWidget()

    def values():
        return {name: c.value for name, c in controls.items()}

    def redraw(_change=None):
        try:
            new = figure_fn(**values(), **fixed)
        except Exception as e:  # the widget must survive every value its controls allow
            message.value = f"<span style='color:#b00'>Cannot draw this: {type(e).__name__}: {e}</span>"
            return
        message.value = ""
        with figure.batch_update():
            figure.data = ()
            figure.add_traces(list(new.data))
            figure.layout = new.layout

    for c in controls.values():
        c.observe(redraw, names="value")
    redraw()
    box = W.VBox([W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")), message, figure])
    box.figure, box.redraw, box.message = figure, redraw, message   # for tests and notebooks
    return box
