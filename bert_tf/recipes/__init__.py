"""The two recipes: pre-training and fine-tuning, as the apps and `bert_tf.pretrain` /
`bert_tf.finetune` run them.

    run_config.py        RunConfig: the settings both recipes share (each field's help/choices
                         are where apps/config_flags.py generates the flags from)
    pretrain_config.py   PretrainConfig        finetune_config.py   FinetuneConfig
    recipe.py            Recipe: the steps of both (plan -> guard the model dir -> build ->
                         restore -> train -> evaluate -> record) and the rerun check
    pretraining/         pretrain(config)      finetuning.py        finetune(config)
                         PretrainingRecipe                          FinetuningRecipe
                         (+ plan.py: the run's inputs checked before it starts;
                         records.py: damaged record files; evaluation.py: --mode=eval)
    run_record.py        config.json "training": the recorded settings + input fingerprints
    precision.py         precision "auto" resolved; the global Keras policy restored afterwards

A recipe composes the library (models, tasks, data, training.Trainer, model_dir); nothing in
the library below imports a recipe.
"""
