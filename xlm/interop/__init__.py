"""Interoperation with the XLM ecosystem.

`import_checkpoint`: the released checkpoints of the original XLM code -> our `model.pt`.
`export_hf`: our `model.pt` -> a `transformers` `XLMWithLMHeadModel` directory.
`hf_tokenizer`: fastBPE codes + vocabulary -> `vocab.json`/`merges.txt` for `XLMTokenizer`.
"""
