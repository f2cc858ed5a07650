// The training worker: owns the GPUDevice, the job store and the JobRunner, and speaks the
// protocol of trainingProtocol.ts. Start it with TrainingClient.createWorker() (client.ts).
import { serveTraining } from './trainingHost';

serveTraining(self as unknown as DedicatedWorkerGlobalScope);
