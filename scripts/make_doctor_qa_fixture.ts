/**
 * Writes test/fixtures/data/doctor_qa_mixed.jsonl: 20 doctor question-and-answer conversations in
 * OpenAI chat format, Chinese and English mixed (the kind of file the fine-tuning article this
 * product started from uses), replies up to about 120 characters. Written for this project; the
 * answers are general advice that sends the patient to a doctor, never a diagnosis.
 *
 *   npx tsx scripts/make_doctor_qa_fixture.ts
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DOCTOR_QA_FIXTURE = join(ROOT, 'test/fixtures/data/doctor_qa_mixed.jsonl');
const SYSTEM_ZH = '你是一名耐心的医生助理，回答简短，不做诊断。';
const SYSTEM_EN = 'You are a patient doctor\'s assistant. Answer briefly and never diagnose.';

/** [question, reply]; Chinese pairs use the Chinese system message, English ones the English. */
export const DOCTOR_QA: readonly [string, string][] = [
  ['医生您好，我最近晚上总是睡不着，怎么办？', '睡前一小时不要看手机，少喝咖啡和浓茶，每天固定时间起床。如果持续两周以上，请到医院睡眠门诊就诊。'],
  ['孩子发烧38度，需要马上去医院吗？', '多喝水，注意休息，可以用温水擦身。如果超过三天不退、精神很差或抽搐，请立即就医或拨打120。'],
  ['I have had a dry cough for a week. Should I worry?', 'Drink warm fluids and rest. If it lasts over three weeks, or you have a fever or trouble breathing, see a doctor.'],
  ['吃完饭胃胀是怎么回事？', '我们不能在线诊断。建议少食多餐，细嚼慢咽，避免油腻。如果经常发生或伴有疼痛，请去消化科检查。'],
  ['How much water should I drink each day?', 'Most adults need six to eight glasses a day, more in hot weather. Ask your doctor if you have heart or kidney disease.'],
  ['我血压140/90，需要吃药吗？', '是否用药要由医生决定。请连续几天在同一时间测量并记录，少吃盐，多运动，然后带记录去看内科。'],
  ['My knee hurts after running. What can I do?', 'Rest it, use ice for 15 minutes a few times a day, and run less for a while. If it swells or lasts over two weeks, see a doctor.'],
  ['感冒了可以吃抗生素吗？', '普通感冒多由病毒引起，抗生素没有作用。请多休息多喝水。是否需要用药，请咨询医生。'],
  ['Is it safe to take ibuprofen every day?', 'Do not take it every day without asking your doctor. Daily use can upset the stomach and kidneys. Follow the dose on the label.'],
  ['最近总是头晕，要做什么检查？', '头晕的原因很多，需要医生面诊后决定检查。起身时慢一点。如果伴有胸痛、说话不清或肢体无力，请立即拨打120。'],
  ['I feel tired all the time. Why?', 'Many things can cause it, and only a doctor can check. Sleep seven to eight hours, eat regularly, and book a visit if it goes on.'],
  ['皮肤过敏起红疹，能用什么药膏？', '先避开可能的过敏物，不要抓挠。用药请遵医嘱。如果出现嘴唇肿胀或呼吸困难，请立即拨打120。'],
  ['My child has a rash and a fever.', 'Please see a doctor today. If the rash does not fade under a pressed glass, or the child is very drowsy, call emergency services.'],
  ['每天走路多少步比较好？', '一般建议每天走六千到八千步，循序渐进。有心脏病或关节问题的人，请先问医生适合的运动量。'],
  ['Can I exercise with a cold?', 'Light walking is fine if the symptoms are above the neck. Rest if you have a fever, aches or chest symptoms.'],
  ['牙龈出血怎么办？', '用软毛牙刷，认真刷牙和使用牙线。如果出血持续一周以上或很多，请去口腔科检查。'],
  ['What should I eat to lower my cholesterol?', 'Eat more oats, beans, vegetables and fish, and less fried food. Your doctor can check your levels with a blood test.'],
  ['怀孕期间可以喝咖啡吗？', '一般建议每天咖啡因不超过两百毫克，大约一杯咖啡。具体请听从产科医生的建议。'],
  ['I get headaches at work. Any tips?', 'Take short breaks from the screen, drink water and keep regular meals. See a doctor if they get worse or wake you at night.'],
  ['老人摔倒后手腕肿了，怎么处理？', '先冰敷，抬高手腕，不要用力活动。肿得厉害或变形，可能需要拍片，请尽快去医院骨科。'],
];

export function doctorQaLines(): string[] {
  return DOCTOR_QA.map(([q, a]) => {
    const zh = /[\u4e00-\u9fff]/.test(q);
    return JSON.stringify({ messages: [{ role: 'system', content: zh ? SYSTEM_ZH : SYSTEM_EN }, { role: 'user', content: q }, { role: 'assistant', content: a }] });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const long = DOCTOR_QA.filter(([, a]) => [...a].length > 130);
  if (long.length > 0) throw new Error(`replies over 130 characters: ${long.map(([q]) => q).join(', ')}`);
  writeFileSync(DOCTOR_QA_FIXTURE, doctorQaLines().join('\n') + '\n');
  console.log(`wrote ${DOCTOR_QA_FIXTURE} (${DOCTOR_QA.length} lines)`);
}
