"""The payload widget: records per batch, name length, digits of the number and interests per
record → bytes per record in JSON, MessagePack, Protocol Buffers and Avro, raw and gzipped."""

from __future__ import annotations

from ..serialization import payload_figure
from .base import interactive_figure

RECORDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def payload_widget(person_cls, avro_schema, records: int = 100, name_len: int = 6, digits: int = 4,
                   interests: int = 2):
    """person_cls: the compiled Protocol Buffers message (user_name, favorite_number, interests);
    avro_schema: the matching Avro record schema. The figure is `archlab.serialization.payload_figure`."""
    import ipywidgets as W

    style = {"description_width": "initial"}
    controls = {
        "records": W.SelectionSlider(options=[(f"{n:,}", n) for n in RECORDS],
                                     value=records if records in RECORDS else 100, description="records per batch",
                                     continuous_update=False, style=style),
        "name_len": W.IntSlider(value=name_len, min=0, max=64, description="name length (letters)",
                                continuous_update=False, style=style),
        "digits": W.IntSlider(value=digits, min=0, max=18, description="favourite number (digits)",
                              continuous_update=False, style=style),
        "interests": W.IntSlider(value=interests, min=0, max=10, description="interests per record",
                                 continuous_update=False, style=style),
    }
    return interactive_figure(payload_figure, controls, person_cls=person_cls, avro_schema=avro_schema)
