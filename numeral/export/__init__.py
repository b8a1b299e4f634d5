"""numeral.export — a trained model outside Python: an ONNX graph (:mod:`numeral.export.onnx`)
and a static draw-and-recognise page that runs it in the browser (:mod:`numeral.export.web`).
Both read the network as its layers describe themselves (:mod:`numeral.export.describe`)."""
