"""tools/demo.py reads the evaluations of a training run and gates on them: a segmentor that labels every pixel
background (mIoU up through the background IoU alone, mAcc down) must fail the seg demo."""
import json

from .conftest import load_tool


def _write_scalars(work_dir, records):
    run = work_dir / '20261123_000000' / 'vis_data'
    run.mkdir(parents=True)
    with open(run / 'scalars.json', 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')


def test_seg_gate_rejects_an_all_background_model(tmp_path):
    demo = load_tool('demo')
    # what session 2's seg demo logged: training losses in between, evaluations before and after
    _write_scalars(tmp_path, [dict(mIoU=2.8, mAcc=23.4, aAcc=9.1, step=0), dict(loss=0.6, step=20),
                              dict(mIoU=18.0, mAcc=20.0, aAcc=90.0, step=600)])
    results = demo.read_validation_metrics(str(tmp_path), demo.DEMOS['seg']['metrics'])
    assert [r['step'] for r in results] == [0, 600]
    gains, short = demo.gains_and_shortfalls(results[0], results[-1], demo.DEMOS['seg']['gated'], 1.0, 10.0)
    assert round(gains['mIoU'], 6) == 15.2 and round(gains['mAcc'], 6) == -3.4 and set(short) == {'mAcc'}
    learned = dict(mIoU=45.0, mAcc=55.0, aAcc=93.0)
    assert demo.gains_and_shortfalls(results[0], learned, demo.DEMOS['seg']['gated'], 1.0, 10.0)[1] == {}


def test_det_gate_is_box_map_in_points():
    demo = load_tool('demo')
    before, after = {'coco/bbox_mAP': 0.0}, {'coco/bbox_mAP': 0.132}
    gains, short = demo.gains_and_shortfalls(before, after, demo.DEMOS['det']['gated'], 100.0, 8.0)
    assert round(gains['coco/bbox_mAP'], 6) == 13.2 and short == {}
    assert demo.gains_and_shortfalls(before, {'coco/bbox_mAP': 0.05}, ('coco/bbox_mAP', ), 100.0, 8.0)[1]
