"""taxi-serve prediction service: BentoML over HTTP, grpc.aio beside it, one predictor."""
