"""Running a graph: ``InferenceSession`` (session.py), its precompiled plan (plan.py), and the
``onnx.backend`` adapter (backend.py) that lets onnx's own test runner drive the engine."""
