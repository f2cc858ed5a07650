#!/usr/bin/env python3
"""LoRA fine-tuning of Whittle job %JOB_NAME% with TRL's SFTTrainer and PEFT.

Same data, settings and loss as the job in Whittle: chat examples are rendered with the model's
chat template and only the assistant turns are trained (up to and including each turn's
end-of-turn marker; messages with "weight": 0 are not trained); text examples train every token.
The loss of an optimizer step is the mean over all its trained tokens.

    pip install "trl>=0.20" "peft>=0.13" transformers datasets accelerate
    python train_trl.py            # writes a PEFT adapter to SETTINGS["trainer"]["output_dir"]

SETTINGS["lora"] and SETTINGS["trainer"] are PEFT's LoraConfig and TRL's SFTConfig arguments by
their own names; what the script adds to them is fixed by how Whittle trains.
"""
import json

SETTINGS = json.loads(r"""%SETTINGS%""")


def assistant_pieces(render, messages):
    """Splits a conversation's rendered text into (text, trained) pieces.

    render(messages, add_generation_prompt) returns the template's text. The text a model writes
    for assistant turn k is what follows render(messages[:k], True) in the full rendering, up to
    the end of render(messages[:k + 1], False) without trailing whitespace (the template's
    separator after the end-of-turn token is not generated).
    """
    full = render(messages, False)
    pieces = []
    at = 0
    for k, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prompt = render(messages[:k], True)
        upto = render(messages[: k + 1], False).rstrip()
        if not full.startswith(prompt) or not full.startswith(upto) or len(upto) < len(prompt):
            raise ValueError(f"the chat template renders message {k} differently once later messages follow")
        if len(prompt) < at:
            raise ValueError(f"the chat template's prompt for message {k} overlaps the previous turn")
        trained = message.get("weight", 1) != 0
        pieces.append((full[at:len(prompt)], False))
        pieces.append((full[len(prompt):len(upto)], trained))
        at = len(upto)
    pieces.append((full[at:], False))
    return [(text, trained) for text, trained in pieces if text]


def tokenize_pieces(encode, pieces, max_length):
    """Token ids and the 0/1 assistant mask, each piece tokenised on its own (as at inference),
    truncated from the end to max_length."""
    ids, mask = [], []
    for text, trained in pieces:
        piece = encode(text)
        ids.extend(piece)
        mask.extend([1 if trained else 0] * len(piece))
    return ids[:max_length], mask[:max_length]


def main():
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    s = SETTINGS
    tokenizer = AutoTokenizer.from_pretrained(s["base_model"])
    if s["chat_template"]:
        tokenizer.chat_template = s["chat_template"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def render(messages, add_generation_prompt):
        plain = [{k: v for k, v in m.items() if k != "weight"} for m in messages]
        return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)

    def prepare(example):
        if s["dataset_format"] == "text":
            pieces = [(example["text"], True)]
        else:
            pieces = assistant_pieces(render, example["messages"])
        ids, mask = tokenize_pieces(encode, pieces, s["trainer"]["max_length"])
        # SFTTrainer's collator sets the labels of tokens whose assistant_masks is 0 to -100.
        return {"input_ids": ids, "assistant_masks": mask}

    files = {"train": s["train_file"]}
    if s["validation_file"]:
        files["validation"] = s["validation_file"]
    raw = load_dataset("json", data_files=files)
    data = raw.map(prepare, remove_columns=raw["train"].column_names)
    data = data.filter(lambda e: sum(e["assistant_masks"]) > 0)

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(s["base_model"], torch_dtype=torch.bfloat16 if bf16 else torch.float32)
    lora = LoraConfig(**s["lora"], bias="none", task_type="CAUSAL_LM")
    args = SFTConfig(
        **s["trainer"],
        optim="adamw_torch",
        packing=False,
        bf16=bf16,
        gradient_checkpointing=True,
        logging_steps=1,
        save_strategy="epoch",
        report_to="none",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"] if s["validation_file"] else None,
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.train()
    trainer.save_model(s["trainer"]["output_dir"])


if __name__ == "__main__":
    main()
