"""Pre-serialize MLServer V2 gRPC ModelInfer requests (run in .bench/mlserver, whose mlserver
package carries the V2 protobuf classes): ``python requests.py VECTORS.json OUT``.

VECTORS.json: {"model": name, "vectors": [[...], ...]}; OUT: each message as a 4-byte
big-endian length and its bytes, for benchmarks.grpcgen.
"""

import json
import struct
import sys

from mlserver.grpc import dataplane_pb2 as pb

spec = json.loads(open(sys.argv[1]).read())
with open(sys.argv[2], "wb") as out:
    for vec in spec["vectors"]:
        msg = pb.ModelInferRequest(model_name=spec["model"], inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="input-0", datatype="FP64", shape=[1, len(vec)],
                contents=pb.InferTensorContents(fp64_contents=vec))]).SerializeToString()
        out.write(struct.pack(">I", len(msg)) + msg)
