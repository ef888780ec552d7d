"""Text normalisation for intent matching: case, accents, punctuation, chat spelling, fillers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

# Chat spellings and contractions, applied per token after apostrophes are dropped
# ("what's" arrives here as "whats"). Values may be several words.
ABBREVIATIONS: dict[str, str] = {
    "u": "you",
    "ya": "you",
    "yu": "you",
    "r": "are",
    "ur": "your",
    "urs": "yours",
    "pls": "please",
    "plz": "please",
    "plis": "please",
    "pleas": "please",
    "thx": "thanks",
    "thnx": "thanks",
    "thanx": "thanks",
    "thks": "thanks",
    "tnx": "thanks",
    "ty": "thanks",
    "tysm": "thanks so much",
    "tyvm": "thanks very much",
    "msg": "message",
    "msgs": "messages",
    "idk": "i do not know",
    "btw": "by the way",
    "whats": "what is",
    "wats": "what is",
    "wat": "what",
    "wht": "what",
    "hows": "how is",
    "whos": "who is",
    "wheres": "where is",
    "whens": "when is",
    "thats": "that is",
    "theres": "there is",
    "its": "it is",
    "im": "i am",
    "ive": "i have",
    "youre": "you are",
    "youve": "you have",
    "dont": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "cant": "can not",
    "cannot": "can not",
    "wont": "will not",
    "isnt": "is not",
    "arent": "are not",
    "wasnt": "was not",
    "werent": "were not",
    "havent": "have not",
    "hasnt": "has not",
    "couldnt": "could not",
    "shouldnt": "should not",
    "wouldnt": "would not",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "lemme": "let me",
    "gimme": "give me",
    "dunno": "do not know",
    "pic": "picture",
    "pics": "pictures",
    "pw": "password",
    "pwd": "password",
    "acct": "account",
    "convo": "conversation",
    "convos": "conversations",
    "b4": "before",
    "2day": "today",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "2moro": "tomorrow",
    "rn": "right now",
    "ppl": "people",
    "sth": "something",
    "smth": "something",
    "abt": "about",
    "cuz": "because",
    "coz": "because",
    "bc": "because",
    "thru": "through",
    "nvm": "never mind",
    "np": "no problem",
    "yw": "you are welcome",
    "hru": "how are you",
    "wbu": "what about you",
    "wyd": "what are you doing",
    "cya": "see you",
    "l8r": "later",
    "gr8": "great",
    "k": "ok",
    "kk": "ok",
    "okay": "ok",
    "okey": "ok",
    "yeah": "yes",
    "yea": "yes",
    "yep": "yes",
    "yup": "yes",
    "nope": "no",
    "nah": "no",
    "whr": "where",
    "wen": "when",
    "y": "why",
    "info": "information",
    "asap": "as soon as possible",
    "atm": "at the moment",
    "tho": "though",
    "bcoz": "because",
    "bcz": "because",
    "wud": "would",
    "cud": "could",
    "shud": "should",
    "hv": "have",
    "gud": "good",
    "sry": "sorry",
    "thnks": "thanks",
    "tks": "thanks",
    "hrs": "hours",
    "mins": "minutes",
    "wk": "week",
    "wks": "weeks",
    "doin": "doing",
    "goin": "going",
    "nothin": "nothing",
    "somethin": "something",
    "2nite": "tonight",
    "tonite": "tonight",
}

# Removed wherever they stand: they carry tone, not meaning.
FILLERS: frozenset[str] = frozenset(
    {
        "um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "hm", "ah", "ahh", "eh",
        "oh", "ooh", "please", "just", "actually", "basically", "literally", "kinda",
        "sorta", "lol", "haha", "hahaha", "hehe", "lmao", "tbh", "imo", "imho", "omg",
        "fyi",
    }
)  # fmt: skip

# Removed only as the first word of a longer message ("so how do I…", "well, what…"):
# elsewhere "so much", "as well" and "ok" mean something.
LEADING_FILLERS: frozenset[str] = frozenset({"so", "well", "ok", "anyway", "right", "alright"})

# A greeting in front of a real question ("hey there, how do I search?") is dropped
# when at least this many words remain, so the question decides the intent.
GREETING_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("hey", "there"), ("hi", "there"), ("hello", "there"), ("hey",), ("hi",), ("hello",),
    ("yo",), ("hiya",),
)  # fmt: skip
GREETING_PREFIX_MIN_REST_WORDS = 2

# "like" is a filler after most words ("how do I, like, send…") but a verb after these.
_LIKE_AS_VERB_AFTER: frozenset[str] = frozenset(
    {
        "i", "you", "we", "they", "he", "she", "would", "do", "does", "did", "not", "to",
        "it", "feel", "feels", "look", "looks", "sound", "sounds", "seem", "seems", "is",
        "was", "what", "really", "also", "d",
    }
)  # fmt: skip

# Symbols people type instead of words; everything else that is not a letter or digit
# becomes a space.
SYMBOLS: dict[str, str] = {
    "✓": " tick ",
    "✔": " tick ",
    "☑": " tick ",
    "👋": " hello ",
    "🙏": " thanks ",
    "👍": " ok ",
    "&": " and ",
    "@": " at ",
}

# Everyday English words. They are never "corrected" towards a catalogue word
# ("life" must not become "like"), and stretched spellings are squeezed onto them
# ("sooo" → "so", "goood" → "good"). Roughly the most frequent words of written and
# chat English, kept generic on purpose: nothing here is specific to a catalogue.
COMMON_WORDS: frozenset[str] = frozenset(
    """
    a able about above accept across act action actually add address after again against age
    ago agree ahead air all allow almost alone along already also always am among amount an
    and animal another answer any anyone anything anyway apart app appear apple area arm
    around arrive art as ask at away awesome baby back bad bag ball bank bar base basic be
    beach bear beautiful because become bed been before begin behind believe below best
    better between big bill bird birthday bit black blood blue board boat body book boring
    born both bottom box boy brain bread break breakfast bring brother brown build burn bus
    business busy but buy by cake call came camera can cannot capital car card care carry
    case cat catch cause center certain chair chance change cheap check child children
    choose church city class clean clear climb close clothes cloud coffee cold college color
    colour come common company computer cook cool copy corner cost could count country
    couple course cousin cover crazy create cup cut dad dance dark date daughter day dead
    deal dear decide deep did die different difficult dinner do doctor does dog done door
    down draw dream dress drink drive drop dry during each ear early earth easy eat egg
    eight either else end energy enjoy enough enter even evening event ever every everyone
    everything exactly example except excited exercise expect expensive explain eye face
    fact fail fall family famous far farm fast father favorite favourite fear feel few field
    fight fill film final find fine finger finish fire first fish five fix floor flower fly
    follow food foot for forget form forward four free friend from front fruit full fun funny
    future game garden gas gave get girl give glad glass go god gold gone good got great
    green ground group grow guess guy hair half hand hang happen happy hard has hat hate
    have he head health hear heart heat heavy hello help her here hey hi high hill him his
    history hit hold hole holiday home hope horse hospital hot hotel hour house how however
    huge human hundred hungry hurt husband i ice idea if important in inside instead
    interest into is island it its job join joke jump just keep key kid kill kind king
    kitchen knew know lady lake land language large last late later laugh law lay lead learn
    least leave left leg less let letter level library lie life light like line list listen
    little live local long look lose lost lot love low luck lunch machine mad made main make
    man many map mark market marry matter may maybe me meal mean meet member memory men
    middle might mile milk million mind minute miss moment money month moon more morning
    most mother mountain mouse mouth move movie much mum music must my name nation near
    need never new news next nice night nine no nobody noise none noon nor north nose not
    note nothing notice now number of off offer office often oh ok old on once one only open
    or orange order other our out outside over own page pain paint pair paper parent park
    part party pass past pay peace pen people perfect perhaps person phone pick picture
    piece pink place plan plane plant play please plus point police poor popular possible
    power practice prepare present pretty price print probably problem promise pull push put
    question quick quiet quite rain raise ran rather reach read ready real really reason red
    remember rest rich ride right ring river road rock room round rule run sad safe said
    salt same save saw say school science sea season seat second see seem sell send sense
    sentence serious set seven several shall shape share she ship shirt shoe shop short
    should shout show sick side sign simple since sing sister sit six size skin sky sleep
    slow small smell smile snow so soft some somebody someone something sometimes son song
    soon sorry sound south space speak special spend sport spring stand star start station
    stay step still stone stop store story street strong student study stuff stupid such
    sugar summer sun sure surprise sweet swim table take talk tall taste tea teach teacher
    team tell ten test than thank thanks that the their them then there these they thing
    think third this those though thought thousand three through throw ticket tie till time
    tired to today together told tomorrow tonight too took top touch town toy train travel
    tree trip trouble true try turn twelve twenty two type uncle under understand until up
    upon us use usual very visit voice wait wake walk wall want war warm was wash watch
    water way we wear weather week weekend weird welcome well went were west wet what
    whatever wheel when where whether which while white who whole whose why wide wife will
    win wind window winter wish with without woman women wonder wonderful wood word work
    world worry would write wrong yeah year yellow yes yesterday yet you young your yours
    bye cool nope okay lol wow yay
    monday tuesday wednesday thursday friday saturday sunday january february march april
    june july august september october november december
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# More everyday words that are never "corrected" towards a catalogue word ("prime" is
# not "price", "score" is not "store") but, unlike COMMON_WORDS, still weigh as words
# that may name a topic when a catalogue does not use them ("pizza", "football").
GUARD_WORDS: frozenset[str] = frozenset(
    """
    ability absolute abroad absence academic accident account achieve acid acting active
    actor actress adult advance advice affair afford afraid afternoon agency agent album
    alcohol alive amazing ancient angle angry ankle annual anxiety apartment appeal
    approach april arena argue army arrange arrest artist aside asleep aspect assume
    attack attempt attend attention aunt author autumn average avoid award aware awful
    bacon badge bake balance band banana barrier basket bath battery battle beard beat
    beauty beef beer bell belt bench bend benefit bike billion bite bitter blade blame
    blank blind block blow boil bomb bond bone bonus boot border boss bottle bounce bowl
    brand brave breath breeze brick bride bridge brief bright broad brush bucket budget
    bug bullet bunch burger butter button cabin cable cage calm camp campus cancer candy
    cap captain career careful carpet carrot cash castle casual cattle ceiling cell
    cent century cereal chain chalk champion channel chapter charity chart chase cheek
    cheese chef chess chest chicken chief chip chocolate choice circle citizen claim
    clerk cliff climate clock coach coast coat code coin collar colleague column combine
    comedy comfort comment commit complex concept concert conflict consider contest
    context continue cookie copper core corn cost cotton couch cough council court crack
    craft crash cream crew crime crisis critic crop cross crowd crown cruel cultural
    curious current curtain curve cushion custom cycle damage danger debate debt decade
    deer defend degree delay demand dentist deny depth desert design desk detail device
    diamond diet digital dinosaur direct dirt disease dish distance divide dollar domain
    donkey double doubt dozen drama drawer drum duck dust duty eagle east economy edge
    editor effect effort elbow elect elephant elite empire empty engine enemy equal
    escape essay estate evil exam excuse exist exit expert extra fabric factor faith
    fancy fashion fault feather feature fence festival fever fiction figure film
    filter finance firm flag flame flash flat flight flood flour fluid focus fog fold
    folk football force forest fork formal fortune fox frame fresh fridge frog frozen
    fuel funeral fur furniture galaxy gallery gap garage garlic gate gather gear gender
    gene gentle ghost giant gift ginger glove glue goal goat golf gossip govern grab
    grade grain grand grape grass grave gravity greet grid grill grip guard guest guide
    guilt guitar gun habit hammer handle harbor harbour harm harvest hawk hay hazard
    heal heaven height hello helmet hero hidden hike hint hip hobby honey hook horn
    host hunt hurry ice icon ideal image impact income index infant injury ink insect
    invest iron item jacket jam jar jaw jazz jeans jelly jewel joint journey judge juice
    jungle jury justice kettle kick kidney kiss kit knee knife knock label lamp lane
    laptop laser lawn lawyer layer lazy leader leaf league lean lemon lens lesson liar
    lid limb limit lion lip liquid loan lobby lock logic lonely loop lord lorry loud
    lounge loyal lucky lung magic magnet maid mail major manage mango manner marble
    margin mask mass master match math maths meat medal media melt menu mercy mess
    metal method midnight mild military miner mirror mixture mobile model modern monkey
    monster mood moral motor mud mug muscle museum mushroom mystery nail narrow nasty
    native nature navy neck needle nephew nerve nest net network nice niece noble novel
    nurse nut ocean odd olive onion opera orbit organ oven owl owner oxygen pace pack
    pad palace palm pan panel panic parrot pasta patch path patient pattern pause peach
    peanut pear pepper pet piano pie pig pill pilot pin pine pipe pitch pizza planet
    plate platform plot pocket poem poet poison pole politics pond pool pop pork port
    pose post pot potato pound powder prayer prime prince princess prison prize profit
    proof proud pub pump pumpkin punch pupil puppy purple purse puzzle quality queen
    queue quiz rabbit race rack radio rail rainbow range rank rare rat raw razor reader
    recipe record region relax remote rent repeat rescue resort retire reward rhythm
    rib rice riddle rifle ring riot ripe rival robot rocket roof root rope rose rough
    royal rubber rugby rumour rural rush sack saint salad salary salmon sample sand
    sauce sausage scale scene scheme scholar score screen script sculpture seed senior
    shadow shark sheep sheet shelf shell shield shift shine shock shoot shore shoulder
    shower shrimp signal silence silk silver singer sink skill skirt skull slave slice
    slide slim slot smoke snack snake soap soccer sock soda sofa soil soldier solar solid
    soul soup spare spell spice spider spin spirit spoon spot spray square squirrel
    stable stadium staff stage stair stamp steak steal steam steel stick stomach storm
    stove strange straw stream stress strike string stripe studio style subject subway
    suit supper surface surgeon swamp sweater sword symbol syrup tail talent tank tape
    target tax taxi teeth temple tennis tent term theatre theater theme theory thief
    thumb thunder tiger tile timber tissue toast toe toilet tomato tongue tool tooth
    topic torch tower track trade traffic tragic trail trap trash tray treat trend
    tribe trick truck trunk trust truth tube tune tunnel turkey twin umbrella union
    universe unit university valley van vapour vehicle venue verse vessel victim video
    view village violin virus visa vision vital vote wage wagon waist wallet wander
    warn wave wealth weapon web wedding weed weight whale wheat whip whisky wild wine
    wing wire wise witch wolf wool worm wrist yard yoga zone zoo
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_APOSTROPHES = re.compile(r"['’‘`´]")
# Vowel signs, viramas and other combining marks belong to their word: Python's \w
# knows letters and digits but not marks, and would cut "नाम" into "न" and "म".
# The blocks of the scripts that write words with marks (Latin diacritics, Cyrillic,
# Hebrew, Arabic, the Indic scripts from Devanagari to Sinhala, Thai to Tibetan,
# Myanmar, and the generic combining blocks).
WORD_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670"
    "\u06d6-\u06ed\u0900-\u0963\u0966-\u0dff\u0e00-\u0fff\u1000-\u109f"
    "\u1ab0-\u1aff\u1dc0-\u1dff\u200c\u200d\u20d0-\u20ff\ufe20-\ufe2f"
)
# Split on anything that is not a letter, digit or mark in any script (the Devanagari
# danda "।" ends a sentence).
_NON_WORD = re.compile(rf"[^\w{WORD_MARKS}]+|[_\u0964\u0965]+")
# Diacritics dropped by `strip_accents`: Latin-script accents ("café", "inglés"), and
# the Devanagari nukta ("ज़" and "ज" are typed interchangeably). Not the Indic vowel
# signs or viramas: they spell the word.
_DROPPED_MARKS = re.compile("[\u0300-\u036f\u093c]")
# Candrabindu and anusvara both nasalise and are often typed for one another.
_NASALS = str.maketrans({"\u0901": "\u0902"})
_WORD = re.compile(rf"[\w{WORD_MARKS}]")
_RUN = re.compile(r"([^\W\d_])\1{2,}")  # three or more of the same letter
_LETTERS_RUN = re.compile(r"([^\W\d_])\1+")


def strip_accents(text: str) -> str:
    """Return `text` with Latin diacritics removed ("café" → "cafe"); the vowel signs
    of Indic scripts stay (they spell the word), only the Devanagari nukta goes."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", _DROPPED_MARKS.sub("", decomposed)).translate(_NASALS)


def is_word(token: str) -> bool:
    """Whether `token` is made of letters (with their marks) in any script, no digits:
    "hello", "नाम" and "பெயர்" are; "b4" and "" are not. (`str.isalpha` is False for
    words with Indic vowel signs.)"""
    return bool(token) and all(_WORD.match(ch) for ch in token) and not any(
        ch.isdigit() or ch == "_" for ch in token)


def squeeze_repeats(word: str, vocabulary: Collection[str] = COMMON_WORDS) -> str:
    """Undo stretched spelling: "helloooo" → "hello", "pleeease" → "please".

    Runs of three or more letters are shortened; each run may end as one or two
    letters, and the first spelling found in `vocabulary` (or `COMMON_WORDS`) wins.
    With no known spelling every run becomes one letter, which fuzzy matching then
    treats as a typo.
    """
    if not _RUN.search(word):
        return word
    runs = [m for m in _LETTERS_RUN.finditer(word) if len(m.group(0)) >= 2]
    # Two choices per run: short runs (two letters) may stay or halve, long ones
    # become one or two letters. Cap the search: words with many stretched runs are rare.
    runs = runs[:6]
    candidates: list[str] = []
    for mask in range(1 << len(runs)):
        parts: list[str] = []
        last = 0
        for i, run in enumerate(runs):
            parts.append(word[last : run.start()])
            parts.append(run.group(1) * (2 if mask >> i & 1 else 1))
            last = run.end()
        parts.append(word[last:])
        candidates.append("".join(parts))
    # Prefer spellings that keep original doubles ("hello", "good") over squeezing them.
    candidates.sort(key=len, reverse=True)
    for candidate in candidates:
        if candidate in vocabulary or candidate in COMMON_WORDS:
            return candidate
    return _RUN.sub(r"\1", word)


def _drop_fillers(words: list[str]) -> list[str]:
    kept: list[str] = []
    for i, word in enumerate(words):
        if word in FILLERS:
            continue
        if word == "like" and i > 0 and words[i - 1] not in _LIKE_AS_VERB_AFTER:
            continue
        kept.append(word)
    while len(kept) > 1 and kept[0] in LEADING_FILLERS:
        kept.pop(0)
    for prefix in GREETING_PREFIXES:
        n = len(prefix)
        if tuple(kept[:n]) == prefix and len(kept) - n >= GREETING_PREFIX_MIN_REST_WORDS:
            kept = kept[n:]
            break
    # A message made only of fillers ("please", "lol") keeps its words: an empty
    # message would match nothing, and the words may still mean something.
    return kept if kept else [w for w in words if w]


def tokenize(text: str, vocabulary: Collection[str] = COMMON_WORDS) -> list[str]:
    """Return the normalised words of `text` (see `normalize`)."""
    text = strip_accents(text.casefold())
    for symbol, word in SYMBOLS.items():
        if symbol in text:
            text = text.replace(symbol, word)
    text = _APOSTROPHES.sub("", text)
    words: list[str] = []
    for raw in _NON_WORD.split(text):
        if not raw:
            continue
        word = squeeze_repeats(raw, vocabulary)
        expansion = ABBREVIATIONS.get(word)
        if expansion is None:
            words.append(word)
        else:
            words.extend(expansion.split())
    return _drop_fillers(words)


def normalize(text: str, vocabulary: Collection[str] = COMMON_WORDS) -> str:
    """Normalise a chat message for matching.

    Lower-cases, strips accents and punctuation, undoes stretched letters,
    expands chat abbreviations and contractions ("whats" → "what is", "u" → "you")
    and removes filler words ("um", "just", a leading "so" or "hey there"), but keeps
    words that carry meaning such as "not", "no" and question words.
    """
    return " ".join(tokenize(text, vocabulary))
