"""robokit.intact: INTACT robust training for point-cloud models (see docs/intact.md).

* :mod:`~robokit.intact.saliency` - gradient-saliency targets and the saliency teacher
* :mod:`~robokit.intact.meta` - the teacher's meta-learning (first-order MAML or Reptile) and
  its fast adaptation before targeting
* :mod:`~robokit.intact.adversarial` - the adversarial curriculum's corruption (loss-greedy drop,
  saliency-restricted PGD) within the curriculum's budget
* :mod:`~robokit.intact.hooks` - the ``TrainingHooks`` protocol both the classifier and the
  detector trainers call, and ``CurriculumHooks`` (plain curriculum / INTACT) behind it
* :mod:`~robokit.intact.curriculum` - the gated curriculum of corruption strength
* :mod:`~robokit.intact.attacks` - targeted corruption, PGD, resampling
* :mod:`~robokit.intact.train`, :mod:`~robokit.intact.evaluate` - the classification trainer
  (standard / adversarial / curriculum / INTACT) and the corruption report
* :mod:`~robokit.intact.cli` - ``robokit robustness {train, eval, saliency}``;
  :mod:`~robokit.intact.demo` - the ``make demo`` stage

Builds on :mod:`robokit.pointcloud`; the detector's use of INTACT lives in
:mod:`robokit.detection.intact` (detection depends on intact, never the reverse).
"""
