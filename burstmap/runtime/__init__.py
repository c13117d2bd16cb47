"""What runs inside Lambda, shipped whole as the burstmap layer (standard library and boto3 only).

contracts         the wire shapes between the states, the execution-input checks, shared limits
compute           ``compute_handler``: one plain function -> a handler for single items and batches
start             the start Lambda's work: validate the input, emit the items (payload or S3 list)
json_stream       JSON arrays and JSON Lines decoded from byte chunks, one value at a time
s3_objects        the process's S3 client, streamed (multipart) uploads
concurrent_reads  several result files read at once in bounded memory
results           the ResultWriter manifest and result files -> one result per item
combine           the default combiner (exact sum, counts, failed items) and combine_handler
"""
