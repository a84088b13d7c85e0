import gradio as gr


def greet(name: str) -> str:
    return f"hello {name} from gradio"


demo = gr.Interface(fn=greet, inputs="text", outputs="text", title="Gradio on appyard")
demo.launch()
