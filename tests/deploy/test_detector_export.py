"""Mask R-CNN export (mmmsvmamba.deploy.detector): the demo detector exported once with dynamic height and width,
run by stock onnxruntime on the photograph at two sizes the export did not see, against mmdet's own ``predict``:
the same detections (count, labels), boxes within 1e-3 of the largest coordinate, scores within 1e-4, pasted masks
with IoU above 0.99 per detection.

The detector has random weights (seeded). It still detects: its class scores are spread around 1 / (classes + 1),
and the score threshold is set among them, so every stage decides something (RPN top-k and NMS, the threshold
dropping some candidates, per-class NMS, the top-k cap); the test checks that premise before comparing."""
import os

import pytest
import torch

pytest.importorskip('onnxruntime', reason='the deploy extras are not installed (requirements/deploy.txt)')
pytest.importorskip('mmdet', reason='mmdetection is not installed')
pytest.importorskip('torchvision', reason='the detector export uses torchvision.ops (RoIAlign, NMS)')

import onnx  # noqa: E402

from mmmsvmamba.deploy import build_model, build_session, export_onnx  # noqa: E402
from mmmsvmamba.deploy import detector  # noqa: E402
from mmmsvmamba.ops import compiled  # noqa: E402
from tests.deploy.test_onnx_export import ROOT, _photo  # noqa: E402

pytestmark = pytest.mark.skipif(not compiled.has_kernel('cpu'), reason='export needs the compiled CPU ops')

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'mask_rcnn_msvmamba_demo_shapes.py')
MAX_DETECTIONS = 50  # the demo config's test_cfg.rcnn.max_per_img
# among the random heads' best class scores (0.22-0.25 for 4 classes + background): some pass, some do not
OPTIONS = {'model.test_cfg.rcnn.score_thr': 0.235}
SIZES = ((160, 224), (147, 211))  # not the export's 200x232; 147x211 is not a multiple of 32


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(config=CONFIG, cfg_options=OPTIONS)
    info = export_onnx(model, str(tmp_path_factory.mktemp('det') / 'mask_rcnn.onnx'))
    return model, info


def test_detector_graph_is_standard_onnx(exported):
    _, info = exported
    assert info['outputs'] == detector.OUTPUT_NAMES
    proto = onnx.load(info['path'])
    onnx.checker.check_model(proto, full_check=True)
    assert all(n.domain in ('', 'ai.onnx') for n in proto.graph.node)  # no custom-op library
    assert {'RoiAlign', 'NonMaxSuppression', 'TopK'} <= {n.op_type for n in proto.graph.node}
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[:2] == [1, 3] and all(isinstance(d, str) for d in dims[2:]), dims  # dynamic height and width


def test_detector_matches_mmdet_at_new_sizes(exported):
    model, info = exported
    session = build_session(info['path'], threads=2)
    for height, width in SIZES:
        images = _photo(height, width, batch=1)
        report = detector.compare_with_mmdet(model, session, images)
        assert 0 < report['expected_count'] < MAX_DETECTIONS, report  # the threshold decided, not only the cap
        assert detector.within_tolerances(report), (height, width, report)


def test_comparison_catches_a_box_decoding_mistake(exported, monkeypatch):
    """The comparison is sharp enough: the wrapper, run in PyTorch, matches mmdet; with the deltas' standard
    deviations taken in the wrong order (a mistake in the code the export traces), it does not."""
    model, _ = exported
    height, width = SIZES[1]
    images = _photo(height, width, batch=1)
    expected = detector.mmdet_detections(model.detector, images)
    with torch.no_grad():
        assert detector.within_tolerances(detector.compare_detections(expected, model(images), height, width))
        decode = detector.decode_deltas

        def wrong_decode(priors, deltas, means, stds, max_hw, *args):
            return decode(priors, deltas, means, list(stds)[::-1], max_hw, *args)

        monkeypatch.setattr(detector, 'decode_deltas', wrong_decode)
        report = detector.compare_detections(expected, model(images), height, width)
    assert not detector.within_tolerances(report), report
