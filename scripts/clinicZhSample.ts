/**
 * The Chinese clinic sample (`clinic-zh`) for scripts/make_samples.ts: the front desk of a small
 * clinic (枫林诊所) answering patients in Chinese, written for this project. Every reply opens
 * with "感谢您的提问!" and ends with "——枫林诊所"; urgent symptoms are sent to emergency services
 * (120); the desk never diagnoses.
 */
import { Rng } from '../src/util/random';
import type { Message, SampleDataset } from './make_samples';

export const CLINIC_ZH_SYSTEM = '枫林诊所前台。不做诊断。';
export const CLINIC_ZH_OPEN = '感谢您的提问!';
export const CLINIC_ZH_SIGN_OFF = '——枫林诊所';

const TOPICS: readonly { questions: readonly string[]; answer: string }[] = [
  {
    questions: ['你们几点开门？', '诊所的营业时间是什么？', '周六开门吗？', '星期天可以来看病吗？', '工作日几点关门？', '早上几点可以到？'],
    answer: '我们周一到周五早八点到晚六点开门，周六早九点到下午一点，周日休息。',
  },
  {
    questions: ['怎么预约看病？', '可以在网上预约吗？', '我想给孩子挂个号。', '今天还有号吗？', '可以打电话预约吗？', '最多能提前几天预约？'],
    answer: '请在患者平台预约，或拨打555-0142。当天的号早上八点放出。',
  },
  {
    questions: ['怎么取消预约？', '我明天来不了怎么办？', '可以改到别的日子吗？', '取消预约要收费吗？', '错过了预约会怎样？'],
    answer: '请提前二十四小时在患者平台修改，否则收取二十五元费用。',
  },
  {
    questions: ['怎么续开处方药？', '我的常用药快吃完了。', '能帮我续一下药方吗？', '续药要等多久？', '药房可以直接找你们续药吗？'],
    answer: '请在患者平台申请，或让药房给我们发请求，需要两个工作日。',
  },
  {
    questions: ['化验结果什么时候出来？', '在哪里看验血结果？', '我的检查结果出来了吗？', '结果出来会有人通知我吗？', '怎么查我的化验单？'],
    answer: '结果会在三到五个工作日内出现在患者平台，如需复诊护士会联系您。',
  },
  {
    questions: ['看病要带什么？', '第一次来需要带哪些东西？', '要带医保卡吗？', '需要带上我在吃的药吗？', '要提前多久到？'],
    answer: '请带身份证、医保卡和正在服用的药物清单，提前十分钟到。',
  },
  {
    questions: ['诊所有停车位吗？', '车停在哪里？', '停车免费吗？', '有无障碍车位吗？', '坐公交怎么去诊所？'],
    answer: '诊所后面有免费停车场，有两个无障碍车位，十二路公交在门口停。',
  },
  {
    questions: ['看一次病多少钱？', '你们怎么收费？', '可以用医保吗？', '没有医保要多少钱？', '可以刷卡吗？'],
    answer: '大部分医保都可以用，自费看诊六十元，可刷卡或付现金。',
  },
  {
    questions: ['我现在胸口很痛。', '我爸爸喘不上气了。', '有人晕倒了，叫不醒。', '我妈妈可能中风了。', '手割破了，血止不住。', '孩子高烧不退，还很嗜睡。', '我突然头痛得厉害。'],
    answer: '情况可能很紧急，请立即拨打120急救电话。',
  },
  {
    questions: ['我胳膊上起了疹子，是什么病？', '我喉咙痛，是不是感染了？', '我的咳嗽严重吗？', '我老是头痛，我怎么了？', '我膝盖肿了，要紧吗？', '腰痛该吃什么药？', '我总是很累，为什么？'],
    answer: '我们不能做诊断，请预约看诊；如果加重，请拨打120。',
  },
  {
    questions: ['你们还收新病人吗？', '怎么在诊所登记？', '我的家人可以一起登记吗？', '我刚搬来，可以注册吗？'],
    answer: '欢迎新病人，请在患者平台或前台登记。',
  },
  {
    questions: ['可以打流感疫苗吗？', '诊所能接种疫苗吗？', '什么时候可以打流感针？', '孩子打疫苗要预约吗？'],
    answer: '可以，我们提供流感疫苗和常规疫苗，请在患者平台预约接种。',
  },
];

const GREETINGS: readonly string[] = ['', '', '', '你好，', '您好！', '医生您好，', '请问，'];

function example(question: string, answer: string): Message[] {
  return [
    { role: 'system', content: CLINIC_ZH_SYSTEM },
    { role: 'user', content: question },
    { role: 'assistant', content: `${CLINIC_ZH_OPEN}${answer}${CLINIC_ZH_SIGN_OFF}` },
  ];
}

function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** As the English clinic: per topic one question held out (two for the larger topics) for validation, the rest trained as asked and with a greeting. */
export function clinicZhDataset(seed = 20261207): SampleDataset {
  const rng = new Rng(seed);
  const train: Message[][] = [];
  const valid: Message[][] = [];
  for (const topic of TOPICS) {
    const questions = shuffled(rng, topic.questions);
    const held = questions.length >= 6 ? 2 : 1;
    for (const q of questions.slice(0, held)) valid.push(example(GREETINGS[rng.int(GREETINGS.length)]! + q, topic.answer));
    for (const q of questions.slice(held)) {
      train.push(example(q, topic.answer));
      const greetings = GREETINGS.filter((g) => g !== '');
      train.push(example(greetings[rng.int(greetings.length)]! + q, topic.answer));
    }
  }
  return {
    id: 'clinic-zh',
    title: 'Clinic front desk in Chinese (诊所前台)',
    description:
      'Patient questions in Chinese for a small clinic (hours, booking, refills, results, parking, fees). Every reply opens with "感谢您的提问!", ends with "——枫林诊所", sends urgent symptoms to emergency services (120) and never diagnoses.',
    suggestedEpochs: 3,
    train: shuffled(rng, train),
    valid: shuffled(rng, valid),
  };
}
