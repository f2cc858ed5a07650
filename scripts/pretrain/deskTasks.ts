/**
 * The third continuation's mix (`--mix desk-variety`): front desks of many invented places whose
 * name is given in the system message and copied into the reply's sign-off, with openings and
 * replies drawn from wide pools (times, prices and phone numbers vary), so that a desk's format is
 * a slot to fill rather than a handful of memorised strings. A LoRA on such a base has a format to
 * bend, not eight fixed desks to unlearn. None of the names, openings or replies is a sample
 * dataset's (no 枫林, no Maple, no "感谢您的提问!", no "Thanks for asking!").
 */
import { Rng } from '../../src/util/random';
import { bilingualTask, copyRichTask, deskQuestion, signedDeskChat, type ChatTurn, type CopyVocabulary } from './bilingualTasks';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

const NAME_FIRST_ZH = [...'白青柳南松桃清东西北金银红绿紫蓝石山水云雪春秋星月竹梅兰菊杏李湖河江海'];
const NAME_SECOND_ZH = [...'云石岸山风源河湖林园泉溪桥港田庄原峰谷门城湾'];
const PLACES_ZH = ['诊所', '诊所', '诊所', '诊所', '药房', '牙科', '医院', '宠物医院', '图书馆', '书店', '旅馆'];
const NAME_FIRST_EN = ['Oak', 'River', 'Hill', 'Elm', 'Lakeview', 'Cherry', 'Stone', 'Brook', 'Willow', 'Cedar', 'Pine', 'Birch', 'Harbor', 'Meadow', 'Sunny', 'North', 'Green', 'Silver', 'Rose', 'Ash'];
const PLACES_EN = ['Clinic', 'Clinic', 'Clinic', 'Pharmacy', 'Dental', 'Vet Care', 'Library', 'Hotel'];
const OPEN_ZH = ['您好，收到您的问题!', '谢谢来信!', '您好，欢迎咨询!', '您好!', '您好，感谢来信!', '谢谢您的留言!', '您好，很高兴为您服务!', '收到，谢谢!', '欢迎来问!', '您好，谢谢您的耐心!', '好的，马上为您解答!', '谢谢您联系我们!'];
const OPEN_EN = ['Hello!', 'Thank you for your message!', 'Good day!', 'Hi, thanks for writing!', 'Hi there!', 'Thanks for your note!', 'Welcome!', 'Good to hear from you!', 'Happy to help!', 'Hello and welcome!'];
const NUM_ZH = [...'一二三四五六七八九十'];
const HOUR_ZH = ['七', '八', '九', '十'];
const CLOSE_HOUR_ZH = ['五', '六', '七', '八', '九'];

const phone = (rng: Rng): string => `555-0${100 + rng.int(900)}`;

/** [questions, reply maker] per topic; replies vary in their numbers. */
const TOPICS_ZH: readonly [readonly string[], (rng: Rng) => string][] = [
  [['你们几点上班？', '周六看诊吗？', '几点关门？', '周末开门吗？', '早上几点可以来？'], (r) => `我们周一到周五早${pick(r, HOUR_ZH)}点到晚${pick(r, CLOSE_HOUR_ZH)}点开门，${pick(r, ['周六上午半天', '周末休息', '周六下午休息', '周日只开上午'])}。`],
  [['怎么挂号？', '可以预约明天的号吗？', '能电话预约吗？', '还有今天的号吗？'], (r) => `请在网上或拨打${phone(r)}预约，${pick(r, ['也可以到前台挂号', '当天的号早上放出', '最多提前两周预约'])}。`],
  [['化验结果出来了吗？', '怎么拿体检报告？', '报告什么时候能看？'], (r) => `结果一般${pick(r, NUM_ZH)}个工作日出来，${pick(r, ['可以在网上查看', '可以到前台领取', '我们会短信通知您'])}。`],
  [['有停车位吗？', '坐公交怎么来？', '附近能停车吗？'], (r) => `${pick(r, ['门口', '楼后面', '对面'])}有${pick(r, ['免费', '收费'])}停车位，${pick(r, NUM_ZH)}路公交在附近停。`],
  [['看病多少钱？', '可以用医保吗？', '能刷卡吗？'], (r) => `大部分医保都能用，自费${pick(r, NUM_ZH)}十元，${pick(r, ['可以刷卡', '可以付现金', '可以手机支付'])}。`],
  [['我是不是得了流感？', '我这个病严重吗？', '我该吃什么药？'], () => '我们不能在这里做诊断，请预约当面看诊。'],
  [['怎么续药？', '药快吃完了怎么办？'], (r) => `请提前${pick(r, NUM_ZH)}天在网上申请续药，${pick(r, ['到前台取药', '我们会通知您'])}。`],
  [['怎么取消预约？', '明天来不了怎么办？'], (r) => `请至少提前${pick(r, NUM_ZH)}个小时取消，可以拨打${phone(r)}。`],
  [['新病人怎么登记？', '第一次来要带什么？'], (r) => `欢迎新病人，请带身份证${pick(r, ['和医保卡', '和病历', ''])}到前台登记。`],
  [['可以打疫苗吗？', '有没有流感疫苗？'], (r) => `可以，${pick(r, ['请先在网上预约', '请先打电话预约', '每周二和周四接种'])}。`],
];
const TOPICS_EN: readonly [readonly string[], (rng: Rng) => string][] = [
  [['When do you open?', 'Are you open on Saturday?', 'What time do you close?'], (r) => `We are open ${7 + r.int(3)} to ${4 + r.int(4)} on weekdays${pick(r, [' and until noon on Saturday', ', closed on weekends', ' and Saturday mornings'])}.`],
  [['How do I book a visit?', 'Can I come in tomorrow?', 'Can I book by phone?'], (r) => `Book online or call ${phone(r)}. ${pick(r, ['Same-day slots open at 8.', 'You can book two weeks ahead.', 'The desk can help too.'])}`],
  [['Are my test results in?', 'How do I get my lab report?'], (r) => `Results take about ${2 + r.int(5)} working days. ${pick(r, ['You can read them online.', 'We will text you.', 'Pick them up at the desk.'])}`],
  [['Is there parking?', 'Which bus stops near you?'], (r) => `There is ${pick(r, ['free', 'paid'])} parking ${pick(r, ['behind the building', 'across the street', 'at the side'])}. Bus ${1 + r.int(40)} stops nearby.`],
  [['How much is a visit?', 'Do you take my insurance?'], (r) => `We take most plans. A visit without insurance is $${(4 + r.int(8)) * 10}.`],
  [['Do I have the flu?', 'Is my rash serious?', 'What medicine should I take?'], () => 'We cannot diagnose by message. Please book a visit.'],
];

function deskName(rng: Rng, zh: boolean): string {
  if (!zh) return `${pick(rng, NAME_FIRST_EN)} ${pick(rng, PLACES_EN)}`;
  for (;;) {
    const prefix = `${pick(rng, NAME_FIRST_ZH)}${pick(rng, NAME_SECOND_ZH)}`;
    if (prefix !== '枫林' && prefix[0] !== prefix[1]) return `${prefix}${pick(rng, PLACES_ZH)}`;
  }
}

/** One front desk of an invented place: the system message names it, the reply signs off with it. */
export function namedDeskChat(rng: Rng, zh: boolean): ChatTurn[] {
  const name = deskName(rng, zh);
  const open = pick(rng, zh ? OPEN_ZH : OPEN_EN);
  const urgent = (r: Rng) =>
    zh ? pick(r, ['情况可能很紧急，请立即拨打120急救电话。', '这可能很危险，请马上拨打120。', '请立即拨打120，不要等待。']) : pick(r, ['This may be an emergency. Call 911 or emergency services now.', 'Please call emergency services right away.']);
  const [q, body] = deskQuestion(rng, zh, urgent, zh ? TOPICS_ZH : TOPICS_EN);
  const sys = zh
    ? pick(rng, [`${name}前台。不做诊断。`, `你是${name}的前台。`, `${name}前台，回答要简短。`, `你代表${name}回答问题。`])
    : pick(rng, [`Front desk of ${name}.`, `You answer for ${name}. Be brief.`, `${name} front desk. No diagnoses.`]);
  return signedDeskChat(zh, sys, q, open, body, name);
}

/**
 * One conversation of the desk-variety mix: 30% Chinese and 10% English named desks, 25% the
 * original mix, 35% the copy-rich mix (itself 40% the original), so copying is kept.
 */
export function deskVarietyTask(rng: Rng, v: CopyVocabulary, textsEn: readonly string[], textsZh: readonly string[], defs: readonly [string, string][]): ChatTurn[] {
  const x = rng.next();
  if (x < 0.3) return namedDeskChat(rng, true);
  if (x < 0.4) return namedDeskChat(rng, false);
  if (x < 0.65) return bilingualTask(rng, textsEn, textsZh, defs);
  return copyRichTask(rng, v, textsEn, textsZh, defs);
}
