"""A distributed Map's fields checked at load time (burstmap.local.dmap.settings): what the engine does
not run is refused by name, values AWS rejects are refused, the architecture example passes."""

from __future__ import annotations

import pytest
from map_support import WRITER, distributed, reader

import burstmap.local
from burstmap.local.core.errors import InvalidDefinition, UnsupportedFeature
from burstmap.local.dmap.settings import validate_distributed_map


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (
            {"ItemReader": {**reader("k", "PARQUET")}},
            "'ItemReader.ReaderConfig.InputType PARQUET' in state 'MapState'",
        ),
        (
            {
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "Parameters": {"Bucket": "b", "Key": "k"},
                    "ReaderConfig": {"InputType": "JSON", "ItemsPointer": "/a"},
                }
            },
            "'ItemReader.ReaderConfig.ItemsPointer'",
        ),
        ({"Items": [1]}, "'Items' in state 'MapState'"),
        ({"QueryLanguage": "JSONata"}, "JSONata"),
        (
            {
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": "b", "ExpectedBucketOwner": "1"},
                }
            },
            "'ResultWriter.Parameters.ExpectedBucketOwner'",
        ),
    ],
)
def test_unsupported_fields_are_refused_by_name(fields, named):
    with pytest.raises(UnsupportedFeature, match="not supported locally") as refused:
        validate_distributed_map("MapState", distributed(**fields))
    assert named in str(refused.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"ItemBatcher": {}},
        {"ItemBatcher": {"MaxInputBytesPerBatch": 262_145}},
        {"ItemBatcher": {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}},
        {"ToleratedFailurePercentage": 101},
        {"MaxConcurrency": -1},
        {"ResultWriter": {}},
        {
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "Parameters": {"Bucket": "b", "Key": "k"},
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN"},
            }
        },
    ],
)
def test_invalid_values_are_refused_at_load_time(fields):
    with pytest.raises(InvalidDefinition, match="MapState"):
        validate_distributed_map("MapState", distributed(**fields))


def test_the_architecture_example_definition_validates():
    state = distributed(
        ItemReader=reader("k.jsonl", "JSONL"),
        ItemSelector={
            "item.$": "$$.Map.Item.Value",
            "index.$": "$$.Map.Item.Index",
            "parameters.$": "$.parameters",
        },
        ItemBatcher={
            "MaxItemsPerBatch": 10,
            "MaxInputBytesPerBatch": 262144,
            "BatchInput": {"parameters.$": "$.p"},
        },
        MaxConcurrency=100,
        ToleratedFailurePercentage=0,
        Label="Compute",
        ResultWriter=WRITER,
        ResultPath="$.result",
    )
    validate_distributed_map("Compute", state)
    assert UnsupportedFeature is burstmap.local.UnsupportedFeature
