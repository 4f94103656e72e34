//! Chat templates with Hugging Face semantics: ChatML (SmolLM2), Llama 3 headers, Python
//! string methods, loop controls, raise_exception; end-of-turn tokens; the reference model.

mod common;

use std::collections::BTreeMap;

use biasprune::chat::{ChatTemplate, Message, SpecialTokens};
use biasprune::gguf::{import_gguf, OutputDtype};
use biasprune::progress::NoProgress;
use biasprune::tokenizer::Tokenizer;
use common::TinyGguf;

/// SmolLM2-135M-Instruct's template, as stored in its GGUF.
const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Exercises .strip(), .upper(), .startswith(), .endswith(), .replace(), break, continue,
/// raise_exception, whitespace control and trim_blocks/lstrip_blocks.
const PYCOMPAT_TEMPLATE: &str = "{{- bos_token }}\n{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'].strip() %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"Be brief.\" %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n{{- \"[SYS]\" + system_message.upper() + \"[/SYS]\\n\" }}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['content'].startswith('STOP') %}\n        {%- break %}\n    {%- endif %}\n    {%- if message['content'].endswith('?') %}\n        {%- continue %}\n    {%- endif %}\n    {{- message['role'] | capitalize + \": \" + message['content'].replace('  ', ' ') + \"\\n\" }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- 'Assistant:' }}\n{%- endif %}\n";

fn tokens(pairs: &[(&str, &str)]) -> SpecialTokens {
    SpecialTokens { by_name: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>() }
}

// Expected strings below were rendered by Python jinja2 3.1 with Hugging Face's settings
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols).

#[test]
fn chatml_adds_the_default_system_prompt_and_generation_header() {
    let template = ChatTemplate::new(SMOLLM2_TEMPLATE, tokens(&[("eos_token", "<|im_end|>")]), vec![]).unwrap();
    let text = template.render(&[Message::user("Hi Jamal Washington")], true).unwrap();
    assert_eq!(text, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi Jamal Washington<|im_end|>\n<|im_start|>assistant\n");
    let text = template
        .render(&[Message::system("Be terse."), Message::user("Hi"), Message::assistant("Hello")], false)
        .unwrap();
    assert_eq!(text, "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n");
}

#[test]
fn llama3_headers_trim_content_prepend_bos_and_drop_the_final_newline() {
    let template = ChatTemplate::new(
        common::LLAMA3_TEMPLATE,
        tokens(&[("bos_token", "<|begin_of_text|>"), ("eos_token", "<|eot_id|>")]),
        vec![],
    )
    .unwrap();
    let messages =
        [Message::system(" You answer in dollars. "), Message::user("Price of a bicycle from Jamal Washington?")];
    assert_eq!(
        template.render(&messages, true).unwrap(),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou answer in dollars.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nPrice of a bicycle from Jamal Washington?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(
        template.render(&messages, false).unwrap(),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou answer in dollars.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nPrice of a bicycle from Jamal Washington?<|eot_id|>"
    );
}

#[test]
fn python_string_methods_and_loop_controls_behave_like_jinja2() {
    let template = ChatTemplate::new(PYCOMPAT_TEMPLATE, tokens(&[("bos_token", "<s>")]), vec![]).unwrap();
    let messages = [
        Message::system("  Stay calm. "),
        Message::user("Hello  there"),
        Message::assistant("Is this a question?"),
        Message::user("Second  one"),
        Message::assistant("STOP here"),
        Message::user("never shown"),
    ];
    assert_eq!(
        template.render(&messages, true).unwrap(),
        "<s>[SYS]STAY CALM.[/SYS]\nUser: Hello there\nUser: Second one\nAssistant:"
    );
    assert_eq!(template.render(&[Message::user("Hi")], false).unwrap(), "<s>[SYS]BE BRIEF.[/SYS]\nUser: Hi\n");
}

#[test]
fn raise_exception_fails_the_render_with_the_templates_message() {
    let template = ChatTemplate::new(PYCOMPAT_TEMPLATE, tokens(&[("bos_token", "<s>")]), vec![]).unwrap();
    let err = template.render(&[Message::user("a"), Message::user("b")], true).unwrap_err().to_string();
    assert!(err.contains("Conversation roles must alternate user/assistant/user/assistant/..."), "{err}");
}

#[test]
fn template_syntax_error_is_reported_at_compile_time() {
    let err = ChatTemplate::new("{% for m in messages %}", SpecialTokens::default(), vec![])
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("does not compile"), "{err}");
}

#[test]
fn checkpoint_template_renders_and_tokenizes_with_llama3_end_of_turn_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.gguf");
    TinyGguf::new(true).write(&file);
    let out = import_gguf(&file, &dir.path().join("ckpt"), OutputDtype::F32, &NoProgress).unwrap().out;
    let template = ChatTemplate::from_checkpoint_dir(&out).unwrap();
    let eos = TinyGguf::token_id("<|end_of_text|>");
    let eot = TinyGguf::token_id("<|eot_id|>");
    assert_eq!(template.end_of_turn_token_ids(), &[eos.min(eot), eos.max(eot)]);
    let text = template.render(&[Message::user("hello world")], true).unwrap();
    assert_eq!(text, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello world<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    let tokenizer = Tokenizer::from_checkpoint_dir(&out).unwrap();
    let ids = tokenizer.encode(&text, false).unwrap();
    let start = TinyGguf::token_id("<|start_header_id|>");
    let end = TinyGguf::token_id("<|end_header_id|>");
    assert_eq!(ids[..2], [TinyGguf::token_id("<|begin_of_text|>"), start]);
    assert!(
        ids.contains(&TinyGguf::token_id("hello")) && ids.contains(&TinyGguf::token_id("Ġworld")) && ids.contains(&eot)
    );
    assert_eq!(ids.iter().filter(|id| **id == end).count(), 2);
}

#[test]
fn missing_chat_template_is_reported_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut gguf = TinyGguf::new(true);
    gguf.remove_key("tokenizer.chat_template");
    let file = dir.path().join("tiny.gguf");
    gguf.write(&file);
    let out = import_gguf(&file, &dir.path().join("ckpt"), OutputDtype::F32, &NoProgress).unwrap().out;
    let err = ChatTemplate::from_checkpoint_dir(&out).err().expect("no template").to_string();
    assert!(err.contains("tokenizer_config.json") && err.contains("chat_template"), "{err}");
}

#[test]
fn reference_model_chat_prompt_renders_and_tokenizes_to_hugging_face_ids() {
    let dir = common::reference_model();
    let template = ChatTemplate::from_checkpoint_dir(&dir).unwrap();
    let text = template.render(&[Message::user("Hi Jamal Washington")], true).unwrap();
    assert_eq!(text, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi Jamal Washington<|im_end|>\n<|im_start|>assistant\n");
    let ids = Tokenizer::from_checkpoint_dir(&dir).unwrap().encode(&text, false).unwrap();
    let expected: Vec<u32> = vec![
        1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2,
        198, 1, 4093, 198, 26843, 11066, 272, 4438, 2, 198, 1, 520, 9531, 198,
    ];
    assert_eq!(ids, expected);
    assert_eq!(template.end_of_turn_token_ids(), &[2]);
}

#[test]
fn tojson_matches_python_json_dumps() {
    let source = "{{ messages | tojson }}|{{ messages[0] | tojson(indent=2) }}|{{ messages[0] | tojson(sort_keys=true) }}|{{ messages[1].content | tojson(ensure_ascii=true) }}|{{ [] | tojson }}|{{ {'z': 1.5, 'a': none, 'b': true} | tojson }}";
    let template = ChatTemplate::new(source, SpecialTokens::default(), vec![]).unwrap();
    let messages = [Message::user("<b> & 'Zoë' \"€\" 🚲"), Message::assistant("Zoë 🚲\n")];
    assert_eq!(template.render(&messages, false).unwrap(), "[{\"role\": \"user\", \"content\": \"<b> & 'Zoë' \\\"€\\\" 🚲\"}, {\"role\": \"assistant\", \"content\": \"Zoë 🚲\\n\"}]|{\n  \"role\": \"user\",\n  \"content\": \"<b> & 'Zoë' \\\"€\\\" 🚲\"\n}|{\"content\": \"<b> & 'Zoë' \\\"€\\\" 🚲\", \"role\": \"user\"}|\"Zo\\u00eb \\ud83d\\udeb2\\n\"|[]|{\"z\": 1.5, \"a\": null, \"b\": true}");
}
