"""The demos (mmmsvmamba/engine/demo.py, tools/demo.py) read the evaluations of a training run and gate on them: a
segmentor that labels every pixel background, or that learnt only some of the shapes, must fail the seg demo."""
import glob
import json
import math
import os
import sys

from mmmsvmamba.engine import demo

from .conftest import run_tool

SHAPES = ('circle', 'square', 'triangle', 'cross')


def _write_scalars(work_dir, records):
    run = work_dir / '20261123_000000' / 'vis_data'
    run.mkdir(parents=True)
    with open(run / 'scalars.json', 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')


def _seg_record(miou, macc, background, shapes, step):
    return dict(mIoU=miou, mAcc=macc, aAcc=90.0, step=step, **{'IoU.background': background},
                **{f'IoU.{name}': iou for name, iou in zip(SHAPES, shapes)})


def _seg_gate(before, after):
    return demo.gains_and_shortfalls(before, after, demo.DEMOS['seg']['gated'], 1.0, 10.0)


def test_seg_gate_reads_the_evaluations_and_rejects_an_all_background_model(tmp_path):
    # session 2's seg demo: every pixel background after training; training losses logged in between
    _write_scalars(tmp_path, [_seg_record(2.8, 23.4, 9.1, (1.0, 3.0, 0.5, 0.4), step=0), dict(loss=0.6, step=20),
                              _seg_record(18.0, 20.0, 90.0, (0.0, 0.0, 0.0, 0.0), step=600)])
    results = demo.read_validation_metrics(str(tmp_path), demo.DEMOS['seg']['metrics'])
    assert [r['step'] for r in results] == [0, 600] and results[1]['IoU.background'] == 90.0
    gains, short = _seg_gate(results[0], results[-1])
    assert round(gains['mIoU'], 6) == 15.2 and round(gains['mAcc'], 6) == -3.4
    assert set(short) == {'mAcc', *(f'IoU.{name}' for name in SHAPES)}


def test_seg_gate_rejects_a_model_that_learnt_one_shape():
    # like session 3's 2400-iteration run: mIoU and mAcc rose by more than 10 points, but only squares were found
    before = _seg_record(0.9, 20.4, 4.5, (0.0, 0.0, 0.0, 0.0), step=0)
    after = _seg_record(25.4, 34.8, 96.4, (0.05, 30.6, 0.0, 0.0), step=2400)
    assert set(_seg_gate(before, after)[1]) == {'IoU.circle', 'IoU.triangle', 'IoU.cross'}
    learnt = _seg_record(60.0, 70.0, 96.0, (50.0, 60.0, 30.0, 55.0), step=600)
    assert _seg_gate(before, learnt)[1] == {}


def test_missing_or_nan_metrics_fail_the_gate():
    before = _seg_record(0.9, 20.4, 4.5, (0.0, 0.0, 0.0, 0.0), step=0)
    after = _seg_record(60.0, 70.0, 96.0, (50.0, 60.0, math.nan, 55.0), step=600)
    del after['IoU.cross']
    assert set(_seg_gate(before, after)[1]) == {'IoU.triangle', 'IoU.cross'}


def test_det_gate_is_box_map_in_points():
    before, after = {'coco/bbox_mAP': 0.0}, {'coco/bbox_mAP': 0.132}
    gains, short = demo.gains_and_shortfalls(before, after, demo.DEMOS['det']['gated'], 100.0, 8.0)
    assert round(gains['coco/bbox_mAP'], 6) == 13.2 and short == {}
    assert demo.gains_and_shortfalls(before, {'coco/bbox_mAP': 0.05}, ('coco/bbox_mAP', ), 100.0, 8.0)[1]


def test_seg_demo_learns_every_shape(tmp_path):
    """``python tools/demo.py seg`` end to end (about 2 minutes on 2 cores): it exits 0 only when mIoU, mAcc and
    the IoU of every shape rose by 10 points."""
    work_dir = tmp_path / 'work'
    run_tool([sys.executable, 'tools/demo.py', 'seg', '--data-root', str(tmp_path / 'data'), '--work-dir',
              str(work_dir)], timeout=1200)
    with open(work_dir / 'demo_summary.json') as f:
        summary = json.load(f)
    after = summary['after_training']
    assert after['mIoU'] > 50 and min(after[f'IoU.{name}'] for name in SHAPES) > 25
    drawn = glob.glob(os.path.join(summary['predictions'], 'vis_data', 'vis_image', '*.png'))
    assert len(drawn) == len(os.listdir(tmp_path / 'data' / 'ade' / 'images' / 'validation'))
