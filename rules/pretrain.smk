# Pretraining: one CLM/MLM/TLM model per entry of `models:` (defaults from `pretrain:`).
#
#   results/{model}/pretrain/model.pt       weights + config + dictionary + language ids
#   results/{model}/pretrain/metrics.json   valid/test perplexity and accuracy records
#   results/{model}/pretrain/train.jsonl, tensorboard/, checkpoints/ (undeclared: a rerun
#   resumes from checkpoints/latest.pt when the settings are unchanged)
#
# metrics.json records the hash of the model's settings (not of the whole config, which
# would make the command, hence the job, change with every unrelated config edit).
# GPUs, memory and runtime come from the profile (profiles/slurm). Several GPUs: run the
# command under `torchrun --nproc-per-node N` or `srun` (see README).

rule pretrain_model:
    """Train one model; resumes from its latest checkpoint; keeps the best valid model."""
    wildcard_constraints:
        model="|".join(re.escape(name) for name in MODELS),
    input:
        unpack(pretrain_inputs),
    output:
        model="results/{model}/pretrain/model.pt",
        metrics="results/{model}/pretrain/metrics.json",
    params:
        settings=lambda wildcards: json.dumps(pretrain_settings(wildcards.model), sort_keys=True),
        out="results/{model}/pretrain",
    threads: 2
    # Most tasks wait for a pretrained model: start pretraining before independent jobs.
    priority: 10
    resources:
        # Ranks of the run; the SLURM profile may raise it (with `nodes`) for multi-node
        # training. Several GPUs in one job start one rank each without it.
        tasks=1,
    conda:
        TRAIN_ENV
    log:
        "logs/pretrain/{model}.log",
    shell:
        "xlm pretrain --name {wildcards.model} --settings {params.settings:q}"
        " --data data/bin --vocab {input.vocab:q} --out {params.out:q}"
        " --threads {threads} --ranks {resources.tasks} > {log:q} 2>&1"


rule pretrain:
    """Target: every model under `models:`."""
    input:
        expand("results/{model}/pretrain/{file}", model=list(MODELS),
               file=["model.pt", "metrics.json"]),
