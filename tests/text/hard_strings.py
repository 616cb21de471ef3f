"""Hard inputs for tokenizer parity tests, and a vocab builder that makes them meaningful."""

import random

from tests.text import reference_tokenization as ref

HARD_STRINGS = [
    "",
    " ",
    "   \t\n\r  ",
    "\u3000\u00a0\u2009\u202f",  # ideographic, no-break, thin spaces
    "Hello, World!",
    "The quick brown fox jumps over the lazy dog.",
    "unaffable naïve café résumé — tokenization edge-cases!!",
    "Crème Brûlée à la Mode; ÉCOLE ÇA Ñandú Øresund Åland straße",
    "ΟΔΥΣΣΕΥΣ ΣΑΣ Σ ΑΣ.Β ΑΣ,Β Α'Σ ΑΣ' ὈΔΥΣΣΕΎΣ",  # Greek final sigma contexts
    "İstanbul ǅemal ǈ ǋ K Å Ω ẞ",  # special lower-casing, sign letters
    "北京欢迎你。東京タワー 서울특별시 한국어",  # CJK ideographs, kana, Hangul
    "中文字符測試，混合English和數字123。",
    "豈更車 𠀀𠀁 𪜀",  # compatibility ideographs, ext B/C
    "™ ﬁ ﬂ ＡＢＣ ａｂｃ １２３ … ½ ² ℌ ㈱ ｶﾀｶﾅ",  # compatibility chars: NOT folded
    "a\x00b\x01c\x7fd\x85e\ufffdf",  # controls and replacement char
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060wj",
    "soft\u00adhyphen bidi\u202emark\u202c lr\u200em",
    "line\u2028sep\u2029para\x0bvt\x0cff\x1cfs\x1dgs",
    "emoji 😀👍🏽 ❤️ 👨‍👩‍👧 🇩🇪 ©®",
    "!!!???... ((([[[{{{}}}]]]))) --- ___ @@@ ### $$$ %%% ^^^ &&& *** +++ === ||| \\\\ ~~~ ``",
    "e-mail: john.doe@example.com; url: https://example.org/a?b=c&d=e#f",
    "¡Hola! ¿Qué tal? «quotes» „Anführungszeichen“ ‹›  ‘single’ “double” 「括弧」",
    "dashes ‐ ‑ ‒ – — ― and bullets • ‣ ·  middle·dot",
    "a\u0301 e\u0308 combining\u0327 marks\u0300\u0301\u0302 \u0301\u0301",
    "ﬃ ﬄ ſ ʼn ǰ ΐ ΰ և ﬓ",
    "x" * 101 + " " + "y" * 100 + " " + "z" * 99,  # 100-char rule boundary
    "é" * 101 + " " + "é" * 100,  # long words in characters, not bytes
    "Ａ" * 40 + " " + "ab" * 60,
    "numbers 3.14159 1,000,000 -42 +7 1e-5 0x1F",
    "tabs\tand\nnewlines\r\nmixed",
    "Русский текст: Привет, мир! Ёлка ЁЖИК",
    "العربية: مرحبا بالعالم؟ עברית: שלום",
    "हिन्दी देवनागरी ಕನ್ನಡ ไทย ภาษา",
    "Mathematical 𝐀𝐁𝐂 𝕏𝕐ℤ",
    "\u1fefvaria a\u1fefb \u037e ;",
    "MiXeD CaSe WoRdS ALLCAPS lowercase",
    " ".join(["word"] * 300),  # far longer than any seq_length
]


def chaos_strings(count, seed=0, max_len=40):
    """Random strings over a pool of troublesome characters."""
    pool = (
        "aAbBzZ09 éÉñÑßẞıİΣσςΑΔ\u0301\u0308\u200b\u00ad\x00\x07\t\n\u3000\u00a0"
        "™ﬁＡａ…,.!?'\"-—–()[]{}@#$%^&*_+=|\\/<>~`中文日本語한국어😀👍🏽❤️\ufe0f\ufffd\u2028"
        "αβγ ΑΣ. ЖжЁё العربية"
    )
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, max_len))) for _ in range(count)]


def vocab_for(texts, lower_case, extra=()):
    """A vocab that covers most of `texts` as the reference tokenizer splits them: every
    character (word-initial and "##"), and prefixes / suffixes of the words, so WordPiece has
    real choices to make. Some characters are left out so [UNK] happens too."""
    words = set()
    for t in texts:
        words.update(ref.basic_tokenize(t, lower_case))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seen = set(tokens)

    def add(token):
        if token and token not in seen:
            seen.add(token)
            tokens.append(token)

    for word in sorted(words):
        if len(word) > 100:
            continue
        if "ｶ" in word or "ℤ" in word:  # some characters stay unknown
            continue
        for i, ch in enumerate(word):
            add(ch)
            add("##" + ch)
        if len(word) >= 4:
            add(word[: len(word) // 2])
            add("##" + word[len(word) // 2 :])
            add(word[:3])
        if len(word) % 3 == 0:
            add(word)
    for token in extra:
        add(token)
    return tokens
