# Released XLM checkpoints as pretrained models: each entry of `imported_models:` becomes
# a model file like the ones `models:` pretrain, so fine-tuning rules use it unchanged.
#
#   results/{model}/pretrain/model.pt   weights + config + dictionary + language ids
#   results/{model}/pretrain/vocab      the model's dictionary as a vocab file: point
#                                       bpe.vocab here so the data matches the model's ids

import re

# A name under both `models` and `imported_models` is refused at start-up (xlm/config.py).
IMPORTED_MODELS = config.get("imported_models") or {}


if IMPORTED_MODELS:

    ruleorder: import_checkpoint > pretrain_model

    rule import_checkpoint:
        """A released XLM checkpoint converted to our model file (no pretraining)."""
        input:
            lambda wildcards: IMPORTED_MODELS[wildcards.model]["checkpoint"],
        output:
            model="results/{model}/pretrain/model.pt",
            vocab="results/{model}/pretrain/vocab",
        wildcard_constraints:
            model="|".join(re.escape(name) for name in IMPORTED_MODELS),
        params:
            part=lambda wildcards: IMPORTED_MODELS[wildcards.model].get("part", "auto"),
            langs=lambda wildcards: ",".join(IMPORTED_MODELS[wildcards.model].get("langs", [])),
            trust=lambda wildcards: (
                "--trust-pickle" if IMPORTED_MODELS[wildcards.model].get("trust_pickle") else ""
            ),
        conda:
            TRAIN_ENV
        log:
            "logs/import_checkpoint/{model}.log",
        shell:
            "xlm import-checkpoint --input {input:q} --output {output.model:q}"
            " --vocab-out {output.vocab:q} --part {params.part} --langs={params.langs:q}"
            " {params.trust} > {log:q} 2>&1"
