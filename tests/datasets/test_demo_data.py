"""The generated demo datasets: deterministic, valid COCO / ADE20K layouts, and the variety the demo needs."""
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from mmmsvmamba.datasets.demo_data import (CLASSES, HUE_JITTER, MIN_VISIBLE_PIXELS, SEG_CLASS_HUES, SEG_CLASSES,
                                           make_ade, make_coco, render_image)


def _digest(root):
    h = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(os.path.join(folder, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return make_coco(str(tmp_path_factory.mktemp('coco')), num_train=60, num_val=12)


def test_generation_is_deterministic(tmp_path, coco_root):
    again = make_coco(str(tmp_path / 'again'), num_train=60, num_val=12)
    assert _digest(again) == _digest(coco_root)


def test_a_second_call_keeps_the_data_and_a_new_size_replaces_it(tmp_path):
    root = make_coco(str(tmp_path / 'c'), num_train=6, num_val=2)
    marker = os.path.join(root, 'train', '000000.jpg')
    before = os.path.getmtime(marker)
    make_coco(root, num_train=6, num_val=2)
    assert os.path.getmtime(marker) == before
    make_coco(root, num_train=3, num_val=2)
    assert sorted(os.listdir(os.path.join(root, 'train'))) == ['000000.jpg', '000001.jpg', '000002.jpg']


def test_coco_annotations_are_valid_and_varied(coco_root):
    from pycocotools.coco import COCO
    coco = COCO(os.path.join(coco_root, 'annotations', 'instances_train.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    labels, empty, overlaps, sizes = set(), 0, 0, []
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        with Image.open(os.path.join(coco_root, 'train', info['file_name'])) as img:
            assert img.size == (info['width'], info['height'])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        empty += not anns
        boxes = []
        for ann in anns:
            x, y, w, h = ann['bbox']
            assert 0 <= x and 0 <= y and x + w <= info['width'] and y + h <= info['height']
            assert ann['area'] >= MIN_VISIBLE_PIXELS and ann['iscrowd'] == 0
            mask = coco.annToMask(ann)
            # the mask is exactly the visible part: its pixel count is the area, its extent the box
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) == (x, y, w, h)
            assert mask.sum() == ann['area']
            labels.add(ann['category_id'])
            sizes.append(max(w, h))
            boxes.append((x, y, x + w, y + h))
        overlaps += sum(min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
                        for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert labels == set(range(1, len(CLASSES) + 1))
    assert empty >= 1, 'some images must have no object'
    assert overlaps >= 5, 'objects must overlap (occlusion)'
    assert min(sizes) < 20 and max(sizes) > 55, 'objects must come at different scales'


def test_masks_describe_the_visible_part_of_occluded_shapes():
    occluded = 0
    for seed in range(20):
        image, instance_map, labels, areas = render_image(seed)
        assert image.dtype == np.uint8 and image.shape[:2] == instance_map.shape
        assert len(labels) == len(areas) and instance_map.max() <= len(labels)
        visible = [int((instance_map == i + 1).sum()) for i in range(len(labels))]
        assert all(v <= a for v, a in zip(visible, areas))
        occluded += sum(v < a for v, a in zip(visible, areas))
    assert occluded >= 3, 'later shapes must cover parts of earlier ones'


def _hue_offsets_from_class_family(class_hues):
    """For every shape of 40 images: how far (in turns, 0..0.5) the mean hue of its inner pixels lies from the
    centre of its class's family in the segmentation set."""
    import cv2
    offsets = []
    for seed in range(40):
        image, instance_map, labels, _ = render_image(seed, class_hues)
        hue = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)[..., 0].astype(np.float64) / 256 * 2 * np.pi
        for index, label in enumerate(labels, start=1):
            # inner pixels only: the blur mixes the outline with what lies around it
            inner = cv2.erode((instance_map == index).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            if inner.sum() < 10:
                continue
            mean = np.angle(np.exp(1j * hue[inner]).mean()) / (2 * np.pi)
            offsets.append(abs((mean - SEG_CLASS_HUES[label] + 0.5) % 1.0 - 0.5))
    return np.array(offsets)


def test_seg_classes_have_their_own_hues_and_det_classes_do_not():
    family = _hue_offsets_from_class_family(SEG_CLASS_HUES)
    assert len(family) > 50 and family.max() < HUE_JITTER + 0.02
    # families are a quarter turn apart: no shape is nearer another class's hue than its own
    assert family.max() < 0.125
    anything = _hue_offsets_from_class_family(None)
    assert (anything > 0.125).mean() > 0.4, 'in the COCO set colour must say nothing about the class'
    with pytest.raises(ValueError, match='one hue per class'):
        render_image(0, SEG_CLASS_HUES[:3])


def test_ade_layout(tmp_path):
    root = make_ade(str(tmp_path / 'ade'), num_train=10, num_val=3)
    for split, num in (('training', 10), ('validation', 3)):
        images = sorted(os.listdir(os.path.join(root, 'images', split)))
        labels = sorted(os.listdir(os.path.join(root, 'annotations', split)))
        assert len(images) == num and [n[:-4] for n in images] == [n[:-4] for n in labels]
    values = set()
    for name in os.listdir(os.path.join(root, 'annotations', 'training')):
        seg = np.asarray(Image.open(os.path.join(root, 'annotations', 'training', name)))
        assert seg.dtype == np.uint8 and seg.ndim == 2
        values |= set(np.unique(seg).tolist())
    # 0 = unlabeled band (ignored via reduce_zero_label), 1 = background, 2.. = shapes
    assert values <= set(range(len(SEG_CLASSES) + 1)) and {0, 1} <= values and len(values) >= 4
    with open(os.path.join(root, 'STAMP.json')) as f:
        assert json.load(f)['kind'] == 'ade'
