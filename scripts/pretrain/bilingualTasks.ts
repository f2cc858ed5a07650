/**
 * The synthetic half of the bilingual model's pretraining corpus: chat conversations (ChatML) that
 * teach a small model to copy from its prompt, to rewrite by word rules, to translate simple
 * sentences, and to answer front-desk questions in a fixed opening/closing format, in English and
 * Chinese. A LoRA on such a base has a copy mechanism to bend into a new rewrite or format.
 * Everything is made from templates and a seeded Rng. None of the texts is a sample dataset's:
 * the businesses, openings, sign-offs and rewrite rules differ from public/samples/.
 */
import { Rng } from '../../src/util/random';

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

// ---- aligned English/Chinese everyday sentences (subject, time, verb phrase, object)

/** [English subject, its "be" form, Chinese subject] */
const SUBJECTS: readonly [string, string, string][] = [
  ['I', 'am', '我'], ['We', 'are', '我们'], ['They', 'are', '他们'], ['She', 'is', '她'], ['He', 'is', '他'],
  ['My sister', 'is', '我的姐姐'], ['My brother', 'is', '我的哥哥'], ['Our teacher', 'is', '我们的老师'],
  ['The children', 'are', '孩子们'], ['My friend', 'is', '我的朋友'], ['The old man', 'is', '那位老人'],
  ['Our neighbour', 'is', '我们的邻居'], ['My mother', 'is', '我的妈妈'], ['My father', 'is', '我的爸爸'],
  ['The doctor', 'is', '医生'], ['The students', 'are', '学生们'], ['Your cousin', 'is', '你的表妹'],
];
/** [English -ing verb, English past verb, Chinese verb, object kind] */
const VERBS: readonly [string, string, string, 'place' | 'thing' | 'food' | 'none'][] = [
  ['going to', 'went to', '去', 'place'], ['walking to', 'walked to', '走到', 'place'], ['cleaning', 'cleaned', '打扫', 'place'],
  ['reading', 'read', '读', 'thing'], ['writing', 'wrote', '写', 'thing'], ['buying', 'bought', '买', 'thing'],
  ['looking for', 'looked for', '找', 'thing'], ['carrying', 'carried', '拿着', 'thing'], ['cooking', 'cooked', '做', 'food'],
  ['eating', 'ate', '吃', 'food'], ['sharing', 'shared', '分享', 'food'], ['sleeping', 'slept', '睡觉', 'none'],
  ['singing', 'sang', '唱歌', 'none'], ['working', 'worked', '工作', 'none'], ['resting', 'rested', '休息', 'none'],
];
const OBJECTS: Record<'place' | 'thing' | 'food', readonly [string, string][]> = {
  place: [['the market', '市场'], ['the library', '图书馆'], ['the park', '公园'], ['the station', '车站'], ['the school', '学校'],
    ['the river', '河边'], ['the kitchen', '厨房'], ['the hospital', '医院'], ['the beach', '海边'], ['the office', '办公室']],
  thing: [['a letter', '一封信'], ['the map', '地图'], ['a new book', '一本新书'], ['the newspaper', '报纸'], ['my notes', '我的笔记'],
    ['a warm coat', '一件暖和的外套'], ['the old key', '那把旧钥匙'], ['some flowers', '一些花'], ['the red box', '那个红盒子']],
  food: [['rice', '米饭'], ['noodles', '面条'], ['soup', '汤'], ['bread', '面包'], ['dumplings', '饺子'], ['fish', '鱼'],
    ['an apple', '一个苹果'], ['some tea', '一些茶']],
};
const TIMES: readonly [string, string][] = [
  ['today', '今天'], ['tonight', '今晚'], ['this morning', '今天早上'], ['tomorrow', '明天'], ['on Sunday', '星期天'],
  ['after lunch', '午饭后'], ['every day', '每天'], ['with my brother', '和我的哥哥一起'], ['in the rain', '在雨中'],
  ['with a friend', '和一个朋友一起'], ['before dinner', '晚饭前'], ['this weekend', '这个周末'],
];

export interface Sentence {
  en: string;
  zh: string;
}

export function everydaySentence(rng: Rng): Sentence {
  const [sEn, be, sZh] = pick(rng, SUBJECTS);
  const [ving, vpast, vZh, kind] = pick(rng, VERBS);
  const [tEn, tZh] = pick(rng, TIMES);
  const [oEn, oZh] = kind === 'none' ? ['', ''] : pick(rng, OBJECTS[kind]);
  const obj = oEn ? ` ${oEn}` : '';
  const form = rng.int(3);
  if (form === 0) return { en: `${sEn} ${be} ${ving}${obj} ${tEn}.`, zh: `${sZh}${tZh}正在${vZh}${oZh}。` };
  if (form === 1) return { en: `${sEn} ${vpast}${obj} ${tEn}.`, zh: `${sZh}${tZh}${vZh}了${oZh}。` };
  return { en: `Is ${sEn === 'I' ? 'he' : sEn.toLowerCase().replace(/^(my|our|your|the) /, 'the ')} ${ving}${obj} ${tEn}?`.replace(/^Is (we|they|the children|the students)/i, 'Are $1'), zh: `${sZh}${tZh}在${vZh}${oZh}吗？` };
}

// ---- word-rule rewrites (a family of "styles": each a set of swaps plus an ending)

interface RewriteStyle {
  name: string;
  zh: boolean;
  swaps: [RegExp, string][];
  ending: string;
}

const STYLES: readonly RewriteStyle[] = [
  { name: 'cowboy talk', zh: false, swaps: [[/\byou\b/gi, "y'all"], [/\b(\w+)ing\b/g, "$1in'"], [/\bfriend\b/gi, 'partner']], ending: ', partner.' },
  { name: 'a robot voice', zh: false, swaps: [[/\bI\b/g, 'THIS UNIT'], [/\bmy\b/gi, 'MY'], [/\bis\b/g, 'IS']], ending: '. BEEP.' },
  { name: 'a very polite tone', zh: false, swaps: [[/\bthe\b/g, 'the fine'], [/\bI am\b/g, 'I am kindly']], ending: ', if you please.' },
  { name: 'plural', zh: false, swaps: [[/\bI am\b/g, 'We are'], [/\bmy\b/gi, 'our'], [/\bI\b/g, 'We']], ending: '.' },
  { name: 'past tense', zh: false, swaps: [[/\bam\b/g, 'was'], [/\bis\b/g, 'was'], [/\bare\b/g, 'were']], ending: '.' },
  { name: '古风', zh: true, swaps: [[/我们/g, '吾等'], [/我/g, '吾'], [/你/g, '汝'], [/的/g, '之']], ending: '也。' },
  { name: '客气的语气', zh: true, swaps: [[/你/g, '您'], [/了/g, '了呢']], ending: '，谢谢。' },
  { name: '复数', zh: true, swaps: [[/我(?!们)/g, '我们'], [/他(?!们)/g, '他们'], [/她(?!们)/g, '她们']], ending: '。' },
];

function applyStyle(s: string, st: RewriteStyle): string {
  let out = s.replace(/[.?!。？！]$/, '');
  for (const [re, to] of st.swaps) out = out.replace(re, to);
  return out + st.ending;
}

// ---- front desks of fictional places (openings, sign-offs and answers unlike the samples')

interface Desk {
  en: boolean;
  name: string;
  open: string;
  close: string;
  emergency: string;
  topics: [string[], string][];
}

const DESKS: readonly Desk[] = [
  { en: true, name: 'Birch Dental', open: 'Hello and welcome!', close: '— Birch Dental', emergency: 'That sounds serious. Call 911 or go to the nearest emergency room now.',
    topics: [[['When are you open?', 'What are your hours?'], 'We see patients 9 to 5, Monday to Friday.'],
      [['How do I book a cleaning?', 'Can I get an appointment?'], 'Call us or book online. Most cleanings take 45 minutes.'],
      [['Do you take my insurance?', 'How much is a checkup?'], 'We take most plans. A checkup without insurance is $80.'],
      [['Why does my tooth hurt?', 'Is my gum infected?'], 'We cannot say without an exam. Please book a visit.']] },
  { en: true, name: 'Harbor Pharmacy', open: 'Good day!', close: '— Harbor Pharmacy', emergency: 'Please call emergency services right away. Do not wait.',
    topics: [[['Is my order ready?', 'Can I pick up my medicine?'], 'Orders are ready after 3 pm. Bring your ID.'],
      [['Do you deliver?', 'Can you send it to my house?'], 'Yes, we deliver in town for $4 on weekdays.'],
      [['What pill should I take for my cough?', 'Which medicine is best for me?'], 'We cannot choose a medicine for you. Ask your doctor.']] },
  { en: true, name: 'Cedar Library', open: 'Hi there!', close: '— Cedar Library', emergency: 'Please call 911 now and tell the staff at the desk.',
    topics: [[['When do you close?', 'Are you open on Sunday?'], 'We close at 8 pm and open at noon on Sunday.'],
      [['How do I get a card?', 'Can I borrow books?'], 'Bring proof of address to the front desk for a free card.'],
      [['How many books can I borrow?', 'How long can I keep a book?'], 'Up to ten books for three weeks.']] },
  { en: true, name: 'Willow Vet Care', open: 'Thank you for your message!', close: '— Willow Vet Care', emergency: 'This is an emergency. Call the animal emergency line or 911 now.',
    topics: [[['Can you see my cat today?', 'How do I book for my dog?'], 'Book online or call us. Same-day slots open at 8.'],
      [['What is wrong with my dog?', 'Why is my cat not eating?'], 'We cannot tell without an exam. Please bring your pet in.']] },
  { en: false, name: '松林药房', open: '您好，欢迎咨询!', close: '——松林药房', emergency: '情况可能很紧急，请立即拨打120急救电话。',
    topics: [[['你们几点开门？', '周末营业吗？'], '我们每天早上八点到晚上九点营业。'],
      [['可以送药上门吗？', '能帮我送到家吗？'], '可以，市区内当天送达，运费五元。'],
      [['我咳嗽该吃什么药？', '这个药适合我吗？'], '我们不能替您选药，请咨询您的医生。']] },
  { en: false, name: '白桦牙科', open: '您好!', close: '——白桦牙科', emergency: '这可能很危险，请马上拨打120或去最近的急诊。',
    topics: [[['怎么预约洗牙？', '可以网上预约吗？'], '请在网上或电话预约，洗牙约需四十分钟。'],
      [['我的牙为什么疼？', '我是不是蛀牙了？'], '不检查无法判断，请预约就诊。'],
      [['看牙多少钱？', '能用医保吗？'], '大部分医保都可以用，自费检查八十元。']] },
  { en: false, name: '青山图书馆', open: '你好，谢谢来信!', close: '——青山图书馆', emergency: '请立即拨打120，并告诉前台工作人员。',
    topics: [[['几点关门？', '星期天开放吗？'], '我们晚上八点关门，星期天中午开门。'],
      [['怎么办借书证？', '可以借书吗？'], '带上身份证到前台，免费办理。']] },
];
const URGENT_EN = ['My husband has chest pain and is sweating.', 'My friend cannot breathe.', 'Someone collapsed in the hall.', 'My baby is not waking up.', 'There is a lot of blood and it will not stop.'];
const URGENT_ZH = ['我爸爸胸口剧痛，出了很多汗。', '我朋友突然喘不上气。', '有人晕倒了，叫不醒。', '孩子一直高烧还抽搐。', '流了很多血，止不住。'];

function deskChat(rng: Rng, d: Desk): ChatTurn[] {
  const urgent = rng.next() < 0.2;
  let q: string;
  let body: string;
  if (urgent) {
    q = pick(rng, d.en ? URGENT_EN : URGENT_ZH);
    body = d.emergency;
  } else {
    const [qs, a] = pick(rng, d.topics);
    q = pick(rng, qs);
    body = a;
  }
  const sys = d.en ? `Front desk of ${d.name}. Be brief.` : `你是${d.name}的前台，回答要简短。`;
  const sep = d.en ? ' ' : '';
  return [
    ...(rng.next() < 0.7 ? [{ role: 'system' as const, content: sys }] : []),
    { role: 'user', content: q },
    { role: 'assistant', content: `${d.open}${sep}${body}${sep}${d.close}` },
  ];
}

// ---- the task mix

const OPENERS_EN = ['Sure!', 'Hello!', 'Dear reader,', 'Good news!', 'Hi!', 'Note:'];
const CLOSERS_EN = ['— The Team', '— Oak Hotel', 'Best wishes.', '— River Books', 'See you soon!'];
const OPENERS_ZH = ['好的!', '您好!', '亲爱的读者，', '好消息!', '请注意：'];
const CLOSERS_ZH = ['——客服中心', '——河畔书店', '祝您愉快。', '——橡树酒店', '再见!'];

/**
 * One training conversation. `texts` are real sentences (WordNet examples, Chinese fortunes) for
 * copy tasks; `defs` are [word, definition] pairs for the English question-answer task.
 */
export function bilingualTask(rng: Rng, textsEn: readonly string[], textsZh: readonly string[], defs: readonly [string, string][]): ChatTurn[] {
  const s = everydaySentence(rng);
  const realEn = pick(rng, textsEn);
  const realZh = pick(rng, textsZh);
  const k = rng.int(13);
  const u = (content: string): ChatTurn => ({ role: 'user', content });
  const a = (content: string): ChatTurn => ({ role: 'assistant', content });
  const sys = (content: string): ChatTurn => ({ role: 'system', content });
  switch (k) {
    case 0: {
      const t = rng.next() < 0.5 ? s.en : realEn;
      return [u(`${pick(rng, ['Repeat exactly:', 'Copy this sentence:', 'Say it again:'])} ${t}`), a(t)];
    }
    case 1: {
      const t = rng.next() < 0.5 ? s.zh : realZh;
      return [u(`${pick(rng, ['请原样重复：', '照抄这句话：', '再说一遍：'])}${t}`), a(t)];
    }
    case 2: {
      const st = pick(rng, STYLES);
      const t = st.zh ? s.zh : s.en;
      const ask = st.zh ? `用${st.name}改写这句话。` : `Rewrite the sentence in ${st.name}.`;
      return rng.next() < 0.5 ? [sys(ask), u(t), a(applyStyle(t, st))] : [u(`${ask} ${t}`), a(applyStyle(t, st))];
    }
    case 3:
      return rng.next() < 0.5 ? [u(`Translate into Chinese: ${s.en}`), a(s.zh)] : [u(`翻译成英文：${s.zh}`), a(s.en)];
    case 4:
    case 5:
      return deskChat(rng, pick(rng, DESKS));
    case 6: {
      const zh = rng.next() < 0.5;
      const o = pick(rng, zh ? OPENERS_ZH : OPENERS_EN);
      const c = pick(rng, zh ? CLOSERS_ZH : CLOSERS_EN);
      const t = zh ? s.zh : s.en;
      const ask = zh ? `回复以“${o}”开头，以“${c}”结尾。内容：${t}` : `Start your reply with "${o}" and end it with "${c}". Text: ${t}`;
      return [u(ask), a(zh ? `${o}${t}${c}` : `${o} ${t} ${c}`)];
    }
    case 7: {
      const [w, d] = pick(rng, defs);
      return [u(pick(rng, [`What does "${w}" mean?`, `Define "${w}".`, `Explain the word "${w}".`])), a(`"${w}" means ${d}.`)];
    }
    case 8: {
      const words = s.en.replace(/[.?]$/, '').split(' ');
      const i = rng.int(words.length);
      const w = words[i]!;
      const to = pick(rng, ['blue', 'quietly', 'again', 'the big', 'happily', 'there']);
      const out = s.en.replace(new RegExp(`\\b${w.replace(/[^\w]/g, '')}\\b`), to);
      return [u(`Replace "${w}" with "${to}": ${s.en}`), a(out)];
    }
    case 9: {
      const [, , sZh] = pick(rng, SUBJECTS);
      const t = s.zh;
      const from = [...t].find((ch) => /[\u4e00-\u9fff]/.test(ch)) ?? '我';
      return [u(`把“${from}”换成“${sZh}”：${t}`), a(t.split(from).join(sZh))];
    }
    case 10:
      return [u(pick(rng, ['Write a short sentence about daily life.', 'Tell me one thing someone did today.'])), a(s.en)];
    case 11:
      return [u(pick(rng, ['写一句关于日常生活的话。', '说一件今天发生的事。'])), a(s.zh)];
    default: {
      const t = rng.next() < 0.5 ? realEn : realZh;
      const zh = /[\u4e00-\u9fff]/.test(t);
      return [u(zh ? `这句话说了什么？请复述：${t}` : `Summarise by repeating the key sentence: ${t}`), a(t)];
    }
  }
}

// ---- the copy-rich mix: content no template predicts, so only attending to the prompt helps

/** Open-class words for sentences whose content must be read from the prompt. */
export interface CopyVocabulary {
  nouns: readonly string[];
  adjectives: readonly string[];
}

const BE_SUBJECTS: readonly [string, string][] = [
  ['I', 'am'], ['We', 'are'], ['They', 'are'], ['She', 'is'], ['He', 'is'], ['My aunt', 'is'], ['The farmer', 'is'],
  ['Our teacher', 'is'], ['The children', 'are'], ['My cousin', 'is'], ['The old woman', 'is'], ['Your father', 'is'],
  ['The workers', 'are'], ['His brother', 'is'], ['Her friends', 'are'], ['The driver', 'is'],
];
const ING_VERBS: readonly string[] = [
  'washing', 'carrying', 'building', 'opening', 'selling', 'drawing', 'holding', 'moving', 'checking', 'packing',
  'mending', 'polishing', 'counting', 'hiding', 'finding', 'watching', 'pulling', 'pushing', 'filling', 'sorting',
  'throwing', 'catching', 'planting', 'feeding', 'wrapping', 'lifting', 'folding', 'testing', 'ordering', 'bringing',
];
const WHEN: readonly string[] = [
  'today', 'tonight', 'this morning', 'at noon', 'on Friday', 'after school', 'every week', 'near the door',
  'behind the house', 'in the yard', 'at the station', 'before breakfast', 'all afternoon', 'next to the bridge',
];
const ZH_NOUNS = '桌子 椅子 窗户 雨伞 钥匙 杯子 盘子 书包 帽子 鞋子 灯笼 风筝 花瓶 手机 电脑 地图 信封 箱子 毛巾 镜子 水壶 面包 苹果 西瓜 鸡蛋 茶叶 报纸 照片 自行车 小船'.split(' ');
const ZH_VERBS = '洗 修 画 搬 卖 找 拿 擦 送 包 挂 放 数 藏 种'.split(' ');
const ZH_SUBJECTS = '我 我们 他们 她 他 我的阿姨 那位农民 我们的老师 孩子们 我的表哥 工人们 司机'.split(' ');
const ZH_WHEN = '今天 今晚 今天早上 中午 星期五 放学后 每个星期 晚饭前 整个下午'.split(' ');

/** A sentence with random open-class words: "The driver is polishing the brave kettle at noon." */
function randomSentence(rng: Rng, v: CopyVocabulary): string {
  const [s, be] = pick(rng, BE_SUBJECTS);
  const obj = rng.next() < 0.5 ? `the ${pick(rng, v.adjectives)} ${pick(rng, v.nouns)}` : `${pick(rng, ['a', 'the', 'my', 'our', 'some'])} ${pick(rng, v.nouns)}`;
  const form = rng.int(4);
  if (form === 0) return `${s} ${be} ${pick(rng, ING_VERBS)} ${obj} ${pick(rng, WHEN)}.`;
  if (form === 1) return `${s} ${be} ${pick(rng, ING_VERBS)} ${obj}.`;
  if (form === 2) return `Where is the ${pick(rng, v.adjectives)} ${pick(rng, v.nouns)}?`;
  return `The ${pick(rng, v.nouns)} is ${pick(rng, v.adjectives)} ${pick(rng, WHEN)}.`;
}

function randomZhSentence(rng: Rng): string {
  const n = rng.int(2) + 1;
  const objs = Array.from({ length: n }, () => pick(rng, ZH_NOUNS)).join('和');
  return `${pick(rng, ZH_SUBJECTS)}${pick(rng, ZH_WHEN)}在${pick(rng, ZH_VERBS)}${objs}。`;
}

const styleNamed = (name: string): RewriteStyle => STYLES.find((st) => st.name === name)!;

/** Rewrite styles of the copy-rich mix: two of STYLES and five seen only here. */
const MORE_STYLES: readonly RewriteStyle[] = [
  styleNamed('cowboy talk'),
  { name: 'a sleepy voice', zh: false, swaps: [[/\b(\w+)ing\b/g, "$1in'"], [/\bthe\b/g, 'the ol\''], [/\bvery\b/g, 'reeeally']], ending: '... yawn.' },
  { name: 'a cheerful tone', zh: false, swaps: [[/\bis\b/g, 'is totally'], [/\bmy\b/gi, 'my lovely']], ending: '! Hooray!' },
  { name: 'a news report', zh: false, swaps: [[/\bI am\b/g, 'This reporter is'], [/\bmy\b/gi, 'the reporter\'s'], [/\bthe\b/g, 'the local']], ending: ', sources say.' },
  { name: 'country talk', zh: false, swaps: [[/\bthe\b/g, 'them'], [/\bis\b/g, 'be'], [/\bare\b/g, 'be'], [/\b(\w+)ing\b/g, "$1in'"]], ending: ', y\'hear?' },
  styleNamed('古风'),
  { name: '童话的语气', zh: true, swaps: [[/今天/g, '很久很久以前'], [/在/g, '正在']], ending: '，真开心呀。' },
];

const DESK_OPEN_ZH = ['您好，感谢来信!', '谢谢您的留言!', '您好，很高兴为您服务!', '感谢您的咨询!', '您好!'];
const DESK_CLOSE_ZH = ['——松林药房', '——白桦牙科', '——青山图书馆', '——湖畔宠物医院', '——星河旅馆', '——红枫书店'];
const DESK_OPEN_EN = ['Thank you for writing!', 'Hello and welcome!', 'Good day!', 'Hi there!', 'Thanks for your note!'];
const DESK_CLOSE_EN = ['— Birch Dental', '— Harbor Pharmacy', '— Cedar Library', '— Lakeside Hotel', '— Pine Bakery'];

/**
 * A front desk whose opening and sign-off are stated only in the system message: the reply must
 * take them from the prompt. The body is one of the desks' answers (urgent ones to 120/911).
 */
function namedFormatDesk(rng: Rng): ChatTurn[] {
  const d = pick(rng, DESKS);
  const open = pick(rng, d.en ? DESK_OPEN_EN : DESK_OPEN_ZH);
  const close = pick(rng, d.en ? DESK_CLOSE_EN : DESK_CLOSE_ZH);
  const turns = deskChat(rng, d);
  const reply = turns[turns.length - 1]!.content.slice(d.open.length).replace(new RegExp(`\\s*${d.close}$`), '').trim();
  const sys = d.en ? `Front desk. Start every reply with "${open}" and end it with "${close}".` : `你是前台。每条回复以“${open}”开头，以“${close}”结尾。`;
  const sep = d.en ? ' ' : '';
  return [{ role: 'system', content: sys }, turns[turns.length - 2]!, { role: 'assistant', content: `${open}${sep}${reply}${sep}${close}` }];
}

/**
 * One conversation of the copy-rich mix that continues pretraining: 40% the original mix, the
 * rest copies and rewrites of sentences with random words, copies of random word lists, and
 * front desks whose format is given in the prompt.
 */
export function copyRichTask(rng: Rng, v: CopyVocabulary, textsEn: readonly string[], textsZh: readonly string[], defs: readonly [string, string][]): ChatTurn[] {
  const u = (content: string): ChatTurn => ({ role: 'user', content });
  const a = (content: string): ChatTurn => ({ role: 'assistant', content });
  const x = rng.next();
  if (x < 0.4) return bilingualTask(rng, textsEn, textsZh, defs);
  if (x < 0.55) {
    const t = randomSentence(rng, v);
    return [u(`${pick(rng, ['Repeat exactly:', 'Copy this sentence:', 'Say it again:', 'Repeat:'])} ${t}`), a(t)];
  }
  if (x < 0.63) {
    const t = Array.from({ length: 4 + rng.int(6) }, () => pick(rng, rng.next() < 0.6 ? v.nouns : v.adjectives)).join(' ');
    return [u(`Repeat these words: ${t}`), a(t)];
  }
  if (x < 0.8) {
    const st = pick(rng, MORE_STYLES);
    const t = st.zh ? randomZhSentence(rng) : randomSentence(rng, v);
    const ask = st.zh ? `用${st.name}改写这句话。` : `Rewrite the sentence in ${st.name}.`;
    return rng.next() < 0.6 ? [{ role: 'system', content: ask }, u(t), a(applyStyle(t, st))] : [u(`${ask} ${t}`), a(applyStyle(t, st))];
  }
  if (x < 0.88) {
    const t = randomZhSentence(rng);
    return [u(`${pick(rng, ['请原样重复：', '照抄这句话：', '再说一遍：'])}${t}`), a(t)];
  }
  return namedFormatDesk(rng);
}

// ---- clinic front desks: the clinic's name in the system message, copied into the sign-off

const CLINICS_ZH = ['白云', '青石', '柳岸', '南山', '松风', '桃源', '清河', '东湖'];
const CLINICS_EN = ['Oak', 'River', 'Hill', 'Elm', 'Lakeview', 'Cherry', 'Stone', 'Brook'];
const CLINIC_OPEN_ZH = ['您好，收到您的问题!', '谢谢来信!', '您好，欢迎咨询!', '您好!'];
const CLINIC_OPEN_EN = ['Hello!', 'Thank you for your message!', 'Good day!', 'Hi, thanks for writing!'];
const CLINIC_TOPICS_ZH: readonly [readonly string[], string][] = [
  [['你们几点上班？', '周六看诊吗？', '午休是几点？'], '我们周一到周五八点到十七点看诊，周六上午半天。'],
  [['怎么挂号？', '可以预约明天的号吗？', '能电话预约吗？'], '请在网上或打电话预约，也可以到前台挂号。'],
  [['化验结果出来了吗？', '怎么拿体检报告？'], '结果一般三个工作日出来，可以在网上查看或到前台领取。'],
  [['有停车位吗？', '坐公交怎么来？'], '诊所后面有免费停车位，公交车站就在门口。'],
  [['看病多少钱？', '可以用医保吗？'], '大部分医保都能用，自费普通门诊五十元。'],
  [['我是不是得了流感？', '我这个病严重吗？'], '我们不能在这里做诊断，请预约医生当面看诊。'],
];
const CLINIC_TOPICS_EN: readonly [readonly string[], string][] = [
  [['When do you open?', 'Are you open on Saturday?'], 'We are open 8 to 5 on weekdays and until noon on Saturday.'],
  [['How do I book a visit?', 'Can I see a doctor tomorrow?'], 'Book online or call the desk. Same-day slots open at 8.'],
  [['Are my test results in?', 'How do I get my lab report?'], 'Results take about three working days. You can read them online.'],
  [['Is there parking?', 'Which bus stops near you?'], 'There is free parking behind the building and a bus stop at the door.'],
  [['Do I have the flu?', 'Is my rash serious?'], 'We cannot diagnose by message. Please book a visit with a doctor.'],
];

/**
 * A desk's question and reply body: one time in five an urgent question and `urgent`'s reply,
 * else a topic's question and its answer (which may draw its own numbers).
 */
export function deskQuestion(rng: Rng, zh: boolean, urgent: (rng: Rng) => string, topics: readonly [readonly string[], string | ((rng: Rng) => string)][]): [string, string] {
  if (rng.next() < 0.2) {
    const q = pick(rng, zh ? URGENT_ZH : URGENT_EN);
    return [q, urgent(rng)];
  }
  const [qs, answer] = pick(rng, topics);
  const q = pick(rng, qs);
  return [q, typeof answer === 'string' ? answer : answer(rng)];
}

/** The chat of a desk named in the system message: opening, body, then the name as sign-off. */
export function signedDeskChat(zh: boolean, sys: string, q: string, open: string, body: string, name: string): ChatTurn[] {
  return [
    { role: 'system', content: sys },
    { role: 'user', content: q },
    { role: 'assistant', content: zh ? `${open}${body}——${name}` : `${open} ${body} — ${name}` },
  ];
}

function clinicDeskChat(rng: Rng): ChatTurn[] {
  const zh = rng.next() < 0.6;
  const name = zh ? `${pick(rng, CLINICS_ZH)}诊所` : `${pick(rng, CLINICS_EN)} Clinic`;
  const open = pick(rng, zh ? CLINIC_OPEN_ZH : CLINIC_OPEN_EN);
  const urgent = () => (zh ? '情况可能很紧急，请立即拨打120急救电话。' : 'This may be an emergency. Call 911 or emergency services now.');
  const [q, body] = deskQuestion(rng, zh, urgent, zh ? CLINIC_TOPICS_ZH : CLINIC_TOPICS_EN);
  const sys = zh ? pick(rng, [`${name}前台。不做诊断。`, `你是${name}的前台。`, `${name}前台，回答要简短。`]) : pick(rng, [`Front desk of ${name}.`, `You answer for ${name}. Be brief.`]);
  return signedDeskChat(zh, sys, q, open, body, name);
}

/**
 * The second continuation's mix: 30% clinic front desks whose sign-off names the clinic of the
 * system message, 30% the original mix, 40% the copy-rich mix (itself 40% the original).
 */
export function clinicCopyTask(rng: Rng, v: CopyVocabulary, textsEn: readonly string[], textsZh: readonly string[], defs: readonly [string, string][]): ChatTurn[] {
  const x = rng.next();
  if (x < 0.3) return clinicDeskChat(rng);
  if (x < 0.6) return bilingualTask(rng, textsEn, textsZh, defs);
  return copyRichTask(rng, v, textsEn, textsZh, defs);
}
