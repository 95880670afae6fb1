"""An mmdet Mask R-CNN as one exportable function: image -> boxes, scores, labels, per-detection masks.

:class:`MaskRCNNDetections` wraps a built mmdet ``MaskRCNN`` (its backbone, FPN, RPN head, RoI extractors, box and
mask heads and their weights are used as they are) and re-states the test-time steps that mmdet writes with
data-dependent Python branches and mmcv's compiled ops, as tensor code that ``torch.export`` traces with dynamic
sizes: ``torchvision.ops.roi_align`` and ``torchvision.ops.nms``, which the ONNX exporter writes as the standard
``RoiAlign`` and ``NonMaxSuppression`` operators, and ``TopK``. For one image (1, 3, H, W), normalised as the
model's data preprocessor does:

1. RPN, per FPN level: sigmoid objectness of the (H_l, W_l, A) anchors, the ``nms_pre`` best (TopK), deltas decoded
   on the anchors (``DeltaXYWHBBoxCoder``) and clipped to the image; boxes of zero width or height dropped; NMS per
   level (``test_cfg.rpn.nms``), the ``max_per_img`` best kept -> proposals (P, 4).
2. Box head on RoIAlign features (each RoI pooled from the level mmdet's ``map_roi_levels`` picks): class softmax,
   per-class box deltas decoded on the proposals and clipped; every (proposal, class) pair above
   ``test_cfg.rcnn.score_thr`` is a candidate; NMS per class (``test_cfg.rcnn.nms``), the ``max_per_img`` best kept,
   ordered by score -> ``boxes`` (N, 4) x1 y1 x2 y2 in input pixels, ``scores`` (N,), ``labels`` (N,) int64.
3. Mask head on RoIAlign features of the final boxes: the sigmoid of the mask logits of each detection's class ->
   ``masks`` (N, M, M) float in [0, 1] (M = 28), in the box's frame. :func:`paste_masks` turns them into image
   masks (N, H, W) as mmdet's ``predict`` does (bilinear sampling at pixel centres, threshold
   ``mask_thr_binary``); the paste is left out of the graph because it is N x H x W work and memory
   (100 x 1333 x 800 at COCO sizes) that a user who draws or encodes masks per box does not need.

:func:`mmdet_detections` runs mmdet's own ``predict`` on the same tensor (the reference the export is checked
against). mmdet and mmcv are imported inside the functions: ``mmmsvmamba.deploy`` does not depend on OpenMMLab.
"""
import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import DeployError

__all__ = ['MaskRCNNDetections', 'OUTPUT_NAMES', 'decode_deltas', 'paste_masks', 'mmdet_detections',
           'compare_detections', 'compare_with_mmdet', 'TOLERANCES', 'within_tolerances']

# onnxruntime against mmdet: boxes relative to the largest coordinate, scores absolute, masks IoU per detection
TOLERANCES = dict(box_error=1e-3, score_error=1e-4, mask_iou_min=0.99)

OUTPUT_NAMES = ['boxes', 'scores', 'labels', 'masks']


def decode_deltas(priors: torch.Tensor, deltas: torch.Tensor, means, stds, max_hw: torch.Tensor,
                  wh_ratio_clip: float = 16 / 1000) -> torch.Tensor:
    """(dx, dy, dw, dh) deltas (n, 4 k) on priors (n, 4) x1 y1 x2 y2 -> boxes (n, 4 k), clipped to the image.

    The transform of mmdet's ``DeltaXYWHBBoxCoder`` (normalised deltas, centre shift by the prior's size, log-size
    change limited to ``|log(wh_ratio_clip)|``); ``max_hw`` is a float tensor (height, width).
    """
    n = priors.shape[0]
    deltas = deltas.reshape(n, -1, 4) * deltas.new_tensor(stds) + deltas.new_tensor(means)
    limit = abs(math.log(wh_ratio_clip))
    size = (priors[:, 2:] - priors[:, :2])[:, None, :]
    centre = (priors[:, :2] + priors[:, 2:])[:, None, :] * 0.5 + deltas[..., :2] * size
    half = size * deltas[..., 2:].clamp(min=-limit, max=limit).exp() * 0.5
    boxes = torch.cat([centre - half, centre + half], dim=-1)
    upper = max_hw.flip(0).repeat(2)
    boxes = torch.minimum(torch.maximum(boxes, torch.zeros_like(upper)), upper)
    return boxes.reshape(n, -1)


def _nms_per_group(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou: float,
                   keep: int) -> torch.Tensor:
    """Indices of the ``keep`` best boxes left by NMS within each group, by descending score.

    Groups are kept apart by shifting each group's boxes by group * (largest coordinate + 1), mmdet's
    ``batched_nms``; one ``NonMaxSuppression`` in ONNX."""
    import torchvision
    top = torch.cat([boxes.flatten(), boxes.new_zeros(1)]).max()  # also defined when there are no boxes
    shifted = boxes + (groups.to(boxes.dtype) * (top + 1))[:, None]
    return torchvision.ops.nms(shifted, scores, iou)[:keep]


def _roi_features(extractor: nn.Module, feats, rois: torch.Tensor) -> torch.Tensor:
    """mmdet SingleRoIExtractor's output for rois (n, 5) = (batch index, x1, y1, x2, y2): each RoI pooled from
    the level ``map_roi_levels`` assigns it. All levels are pooled for every RoI and the right one selected, which
    needs no data-dependent indexing (4 RoIAligns instead of 1 per RoI)."""
    import torchvision
    layers = extractor.roi_layers
    levels = extractor.map_roi_levels(rois, len(layers))
    pooled = None
    for level, layer in enumerate(layers):
        out = torchvision.ops.roi_align(feats[level], rois, layer.output_size, layer.spatial_scale,
                                        layer.sampling_ratio, layer.aligned)
        pooled = out if pooled is None else torch.where((levels == level)[:, None, None, None], out, pooled)
    return pooled


class MaskRCNNDetections(nn.Module):
    """mmdet ``MaskRCNN`` (built, eval mode) -> (1, 3, H, W) images to boxes (N, 4), scores (N,), labels (N,)
    int64, masks (N, M, M) (see the module docstring). Batch 1."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector
        self.rpn_cfg = detector.test_cfg.rpn
        self.rcnn_cfg = detector.test_cfg.rcnn
        if not detector.rpn_head.use_sigmoid_cls:
            raise DeployError('the RPN export needs a sigmoid objectness (rpn_head.loss_cls.use_sigmoid=True)')
        for extractor in (detector.roi_head.bbox_roi_extractor, detector.roi_head.mask_roi_extractor):
            for layer in extractor.roi_layers:
                if getattr(layer, 'pool_mode', 'avg') != 'avg':
                    raise DeployError(f'RoIAlign with pool_mode={layer.pool_mode!r} does not export (ONNX RoiAlign '
                                      'averages)')
        self.output_names = list(OUTPUT_NAMES)
        self.single_image = True

    def forward(self, images: torch.Tensor):
        hw = torch.tensor(images.shape[2:], dtype=torch.float32)
        feats = self.detector.extract_feat(images)
        proposals = self._proposals(feats, hw)
        boxes, scores, labels = self._boxes(feats, proposals, hw)
        return boxes, scores, labels, self._masks(feats, boxes, labels)

    def _proposals(self, feats, hw):
        head, cfg = self.detector.rpn_head, self.rpn_cfg
        objectness, deltas = head(feats)
        anchors = head.prior_generator.grid_priors([o.shape[-2:] for o in objectness], device=feats[0].device)
        level_scores, level_boxes, level_ids = [], [], []
        for level, (obj, delta, prior) in enumerate(zip(objectness, deltas, anchors)):
            obj = obj[0].permute(1, 2, 0).reshape(-1).sigmoid()
            delta = delta[0].permute(1, 2, 0).reshape(-1, 4)
            obj, best = obj.topk(torch.sym_min(obj.shape[0], cfg.nms_pre))
            coder = head.bbox_coder
            level_boxes.append(decode_deltas(prior[best], delta[best], coder.means, coder.stds, hw))
            level_scores.append(obj)
            level_ids.append(torch.full_like(best, level))
        boxes, scores, ids = torch.cat(level_boxes), torch.cat(level_scores), torch.cat(level_ids)
        size = boxes[:, 2:] - boxes[:, :2]
        valid = ((size[:, 0] > cfg.get('min_bbox_size', 0)) & (size[:, 1] > cfg.get('min_bbox_size', 0)))
        valid = valid.nonzero()[:, 0]
        boxes, scores, ids = boxes[valid], scores[valid], ids[valid]
        return boxes[_nms_per_group(boxes, scores, ids, cfg.nms.iou_threshold, cfg.max_per_img)]

    def _boxes(self, feats, proposals, hw):
        roi_head, cfg = self.detector.roi_head, self.rcnn_cfg
        head = roi_head.bbox_head
        rois = torch.cat([proposals.new_zeros(proposals.shape[0], 1), proposals], dim=1)
        extractor = roi_head.bbox_roi_extractor
        cls_score, box_deltas = head(_roi_features(extractor, feats[:extractor.num_inputs], rois))
        scores = F.softmax(cls_score, dim=-1)[:, :-1]
        classes = scores.shape[1]
        coder = head.bbox_coder
        boxes = decode_deltas(proposals, box_deltas, coder.means, coder.stds, hw).reshape(proposals.shape[0], -1, 4)
        boxes = boxes.expand(-1, classes, 4).reshape(-1, 4)  # a class-agnostic head has one box per proposal
        labels = torch.arange(classes).expand(proposals.shape[0], classes).reshape(-1)
        scores = scores.reshape(-1)
        candidates = (scores > cfg.score_thr).nonzero()[:, 0]
        boxes, scores, labels = boxes[candidates], scores[candidates], labels[candidates]
        keep = _nms_per_group(boxes, scores, labels, cfg.nms.iou_threshold, cfg.max_per_img)
        return boxes[keep], scores[keep], labels[keep]

    def _masks(self, feats, boxes, labels):
        roi_head = self.detector.roi_head
        rois = torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], dim=1)
        extractor = roi_head.mask_roi_extractor
        logits = roi_head.mask_head(_roi_features(extractor, feats[:extractor.num_inputs], rois))
        if logits.shape[1] > 1:
            logits = torch.gather(logits, 1, labels[:, None, None, None].expand(-1, 1, *logits.shape[2:]))
        return logits[:, 0].sigmoid()


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, height: int, width: int,
                threshold: float = 0.5) -> torch.Tensor:
    """Per-detection masks (N, M, M) in their boxes (N, 4) -> image masks (N, height, width) bool.

    Each image pixel centre is mapped into its box's [-1, 1] frame and the mask is sampled bilinearly there (zero
    outside), then thresholded: mmdet's ``FCNMaskHead`` paste."""
    n = masks.shape[0]
    if n == 0:
        return masks.new_zeros((0, height, width), dtype=torch.bool)
    x0, y0, x1, y1 = boxes.float().unbind(1)
    ys = torch.arange(height, dtype=torch.float32) + 0.5
    xs = torch.arange(width, dtype=torch.float32) + 0.5
    gy = ((ys[None] - y0[:, None]) / (y1 - y0)[:, None] * 2 - 1).nan_to_num(0, 0, 0)
    gx = ((xs[None] - x0[:, None]) / (x1 - x0)[:, None] * 2 - 1).nan_to_num(0, 0, 0)
    grid = torch.stack([gx[:, None, :].expand(n, height, width), gy[:, :, None].expand(n, height, width)], dim=3)
    pasted = F.grid_sample(masks[:, None].float(), grid, align_corners=False)[:, 0]
    return pasted >= threshold


def mmdet_detections(detector: nn.Module, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """mmdet's own ``predict`` on one normalised, unpadded image (1, 3, H, W): boxes, scores, labels and image
    masks (N, H, W) bool: the reference the export is compared with."""
    from mmdet.structures import DetDataSample
    height, width = images.shape[2:]
    sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width), scale_factor=(1., 1.),
                                         pad_shape=(height, width), batch_input_shape=(height, width)))
    with torch.no_grad():
        result = detector.predict(images, [sample], rescale=True)[0].pred_instances
    return result.bboxes, result.scores, result.labels, result.masks.bool()


def compare_detections(expected, got, height: int, width: int, threshold: float = 0.5) -> dict:
    """How far ``got`` (boxes, scores, labels, per-detection masks, e.g. onnxruntime's outputs) is from
    ``expected`` (:func:`mmdet_detections`): dict(count, expected_count, labels_equal, box_error (max |difference|
    / largest coordinate), score_error (max |difference|), mask_iou_min (over detections, after pasting))."""
    exp_boxes, exp_scores, exp_labels, exp_masks = [torch.as_tensor(t) for t in expected]
    boxes, scores, labels, masks = [torch.as_tensor(t) for t in got]
    report = dict(count=int(boxes.shape[0]), expected_count=int(exp_boxes.shape[0]))
    if report['count'] != report['expected_count']:
        return report
    report['labels_equal'] = bool(torch.equal(labels.long(), exp_labels.long()))
    if report['count'] == 0:
        return dict(report, box_error=0.0, score_error=0.0, mask_iou_min=1.0)
    report['box_error'] = float((boxes - exp_boxes).abs().max() / exp_boxes.abs().max().clamp(min=1e-12))
    report['score_error'] = float((scores - exp_scores).abs().max())
    pasted = paste_masks(masks, boxes, height, width, threshold)
    inter = (pasted & exp_masks).flatten(1).sum(1).float()
    union = (pasted | exp_masks).flatten(1).sum(1).float()
    report['mask_iou_min'] = float(torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter)).min())
    return report


def within_tolerances(report: dict) -> bool:
    """Whether a :func:`compare_detections` report meets :data:`TOLERANCES` (same count, same labels)."""
    return (report['count'] == report['expected_count'] and report['labels_equal']
            and report['box_error'] <= TOLERANCES['box_error'] and report['score_error'] <= TOLERANCES['score_error']
            and report['mask_iou_min'] > TOLERANCES['mask_iou_min'])


def compare_with_mmdet(model: MaskRCNNDetections, session_or_path, images: torch.Tensor) -> dict:
    """:func:`compare_detections` of an exported file (path or onnxruntime session) run on ``images`` (1, 3, H, W)
    against mmdet's ``predict`` of the wrapped detector."""
    from .onnxruntime import build_session, run
    session = build_session(session_or_path) if isinstance(session_or_path, (str, bytes)) else session_or_path
    threshold = model.rcnn_cfg.get('mask_thr_binary', 0.5)
    return compare_detections(mmdet_detections(model.detector, images), run(session, images), *images.shape[2:],
                              threshold=threshold)
